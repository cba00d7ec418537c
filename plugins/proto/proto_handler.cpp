// The proto plugin: protobuf messages as protobuf text format, one file per
// checkpointable (proto.pbtxt by default), as Orbax's ProtoHandler writes
// them.
//
// The plugin holds no generated code for user messages: a message arrives
// as its type name, wire bytes and a FileDescriptorSet, and is rebuilt as a
// dynamic message in a DescriptorPool of the plugin's own. So any number of
// shared objects may compile the same .proto as the host without protobuf
// seeing a file registered twice.
//
// Protobuf logs through a process-wide handler that belongs to the host, so
// the plugin only uses calls that report errors to it instead of logging:
// error collectors for descriptor building and text parsing, partial binary
// parsing with explicit required-field checks, and Any expansion only when
// every packed message can be printed.
#include <ckpt/sdk/config.h>
#include <ckpt/sdk/files.h>
#include <ckpt/sdk/plugin.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/message.h>
#include <google/protobuf/text_format.h>

#include <climits>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace {

namespace pb = google::protobuf;
using ckpt::sdk::Error;

constexpr const char* kTypestr = "ckpt.proto.ProtoHandler";
constexpr const char* kDefaultFilename = "proto.pbtxt";

// Nesting limits: parsing, printing and serializing a message recurse once
// per level, and text format's Any expansion once more per payload.
// Messages nest at most kMaxMessageDepth levels, as protobuf's binary
// parser allows by default; text format nests at most kMaxTextDepth
// braces, counting expanded Any payloads too (so does a saved file).
constexpr int kMaxMessageDepth = 100;
constexpr size_t kMaxTextDepth = 512;
// The longest chain of imports in a descriptor set.
constexpr size_t kMaxImportDepth = 512;

// ------------------------------------------------------------ message types

// Keeps the first error of descriptor building, with the file and element.
class DescriptorErrors final : public pb::DescriptorPool::ErrorCollector {
 public:
  void AddError(const std::string& filename, const std::string& element_name,
                const pb::Message*, ErrorLocation,
                const std::string& message) override {
    if (first_.empty())
      first_ = filename + ": " + element_name + ": " + message;
  }
  void AddWarning(const std::string&, const std::string&, const pb::Message*,
                  ErrorLocation, const std::string&) override {}
  const std::string& first() const { return first_; }

 private:
  std::string first_;
};

// The types of one FileDescriptorSet: a pool of the plugin's own and the
// factory of dynamic messages over it. Immutable once built; lookups and
// GetPrototype are thread-safe.
struct MessageTypes {
  pb::DescriptorPool pool;
  pb::DynamicMessageFactory factory{&pool};
};

// Builds `name` from `files` into `pool` after the files it imports, each
// once, whatever their order in the set.
void build_file(
    const std::string& name,
    const std::map<std::string, const pb::FileDescriptorProto*>& files,
    std::set<std::string>& in_progress, pb::DescriptorPool& pool) {
  if (pool.FindFileByName(name) != nullptr) return;
  if (in_progress.size() >= kMaxImportDepth) {
    throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                "the descriptor set chains imports deeper than " +
                    std::to_string(kMaxImportDepth) + " files, at " + name);
  }
  auto it = files.find(name);
  if (it == files.end()) {
    throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                "the descriptor set lacks " + name + ", which is imported");
  }
  if (!in_progress.insert(name).second) {
    throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                "the descriptor set has an import cycle through " + name);
  }
  for (const std::string& dependency : it->second->dependency()) {
    build_file(dependency, files, in_progress, pool);
  }
  DescriptorErrors errors;
  if (pool.BuildFileCollectingErrors(*it->second, &errors) == nullptr) {
    throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                "the descriptor set is invalid: " + errors.first());
  }
  in_progress.erase(name);
}

std::shared_ptr<MessageTypes> build_types(const std::string& descriptor_set) {
  pb::FileDescriptorSet set;
  if (descriptor_set.empty() || !set.ParsePartialFromString(descriptor_set)) {
    throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                "the message's descriptor set is missing or not a serialized "
                "google.protobuf.FileDescriptorSet");
  }
  std::map<std::string, const pb::FileDescriptorProto*> files;
  for (const pb::FileDescriptorProto& file : set.file()) {
    files.emplace(file.name(), &file);
  }
  auto types = std::make_shared<MessageTypes>();
  std::set<std::string> in_progress;
  for (const pb::FileDescriptorProto& file : set.file()) {
    build_file(file.name(), files, in_progress, types->pool);
  }
  return types;
}

// The types of every descriptor set seen so far, by its bytes: a type is
// built once however many times its messages are saved or loaded.
// Thread-safe. Grows with the number of distinct descriptor sets, which is
// the number of message types a program checkpoints.
std::shared_ptr<MessageTypes> types_of(const std::string& descriptor_set) {
  static std::mutex* mutex = new std::mutex();
  static auto* cache =
      new std::map<std::string, std::shared_ptr<MessageTypes>>();
  std::lock_guard<std::mutex> lock(*mutex);
  auto it = cache->find(descriptor_set);
  if (it != cache->end()) return it->second;
  std::shared_ptr<MessageTypes> types = build_types(descriptor_set);
  cache->emplace(descriptor_set, types);
  return types;
}

// A message type named by a ckpt_proto, resolved in its descriptor set.
struct MessageType {
  std::string full_name;
  std::string descriptor_set;
  std::shared_ptr<MessageTypes> types;
  const pb::Message* prototype = nullptr;

  static MessageType of(const ckpt_proto& proto) {
    MessageType type;
    type.full_name = proto.full_name ? proto.full_name : "";
    if (type.full_name.empty()) {
      throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                  "a protobuf value without a type name");
    }
    type.descriptor_set.assign(
        reinterpret_cast<const char*>(proto.descriptor_set),
        proto.descriptor_set_len);
    try {
      type.types = types_of(type.descriptor_set);
    } catch (const Error& e) {
      throw Error(e.code(),
                  "protobuf type " + type.full_name + ": " + e.what());
    }
    const pb::Descriptor* descriptor =
        type.types->pool.FindMessageTypeByName(type.full_name);
    if (descriptor == nullptr) {
      throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                  "the descriptor set of protobuf type " + type.full_name +
                      " does not define it");
    }
    type.prototype = type.types->factory.GetPrototype(descriptor);
    return type;
  }

  // An empty message of this type; it keeps the type's pool alive.
  std::shared_ptr<pb::Message> new_message() const {
    return std::shared_ptr<pb::Message>(
        prototype->New(), [types = types](pb::Message* m) { delete m; });
  }
};

// ------------------------------------------------------------- text format

// Only the type URL prefixes protobuf's own default finder accepts, so that
// every text format reader resolves the same Any payloads.
class AnyTypeFinder final : public pb::TextFormat::Finder {
 public:
  const pb::Descriptor* FindAnyType(const pb::Message& message,
                                    const std::string& prefix,
                                    const std::string& name) const override {
    if (prefix != "type.googleapis.com/" && prefix != "type.googleprod.com/") {
      return nullptr;
    }
    return message.GetDescriptor()->file()->pool()->FindMessageTypeByName(name);
  }
};

// True when the printer can expand every Any in `message` (at any depth)
// without logging: each payload type resolves and its bytes parse. And
// when the text reads back: at most kMaxTextDepth levels in all, at most
// kMaxMessageDepth of them message fields (the text parser does not count
// Any levels). `depth`, `field_depth`: those levels around `message`.
bool any_payloads_printable(const pb::Message& message,
                            const AnyTypeFinder& finder,
                            pb::DynamicMessageFactory& factory,
                            size_t depth = 0, int field_depth = 0) {
  // Each payload parses with a fresh recursion limit: an Any in an Any in
  // an Any... is bounded only here.
  if (depth > kMaxTextDepth || field_depth > kMaxMessageDepth) return false;
  const pb::Descriptor* descriptor = message.GetDescriptor();
  const pb::Reflection* reflection = message.GetReflection();
  if (descriptor->full_name() == "google.protobuf.Any") {
    const pb::FieldDescriptor* url_field = descriptor->FindFieldByNumber(1);
    const pb::FieldDescriptor* value_field = descriptor->FindFieldByNumber(2);
    if (url_field == nullptr || value_field == nullptr) return false;
    std::string url = reflection->GetString(message, url_field);
    size_t slash = url.find_last_of('/');
    // Without a type name the printer shows the Any as a plain message.
    if (slash == std::string::npos || slash + 1 == url.size()) return true;
    const pb::Descriptor* payload_type = finder.FindAnyType(
        message, url.substr(0, slash + 1), url.substr(slash + 1));
    if (payload_type == nullptr) return false;
    std::unique_ptr<pb::Message> payload(
        factory.GetPrototype(payload_type)->New());
    if (!payload->ParsePartialFromString(
            reflection->GetString(message, value_field)) ||
        !payload->IsInitialized()) {
      return false;
    }
    return any_payloads_printable(*payload, finder, factory, depth + 1,
                                  field_depth);
  }
  std::vector<const pb::FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const pb::FieldDescriptor* field : fields) {
    if (field->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (field->is_repeated()) {
      for (int i = 0; i < reflection->FieldSize(message, field); ++i) {
        if (!any_payloads_printable(
                reflection->GetRepeatedMessage(message, field, i), finder,
                factory, depth + 1, field_depth + 1)) {
          return false;
        }
      }
    } else if (!any_payloads_printable(reflection->GetMessage(message, field),
                                       finder, factory, depth + 1,
                                       field_depth + 1)) {
      return false;
    }
  }
  return true;
}

// `message` in text format: UTF-8 strings as they are, map entries by key,
// Any payloads expanded when they can be (as Python's text_format does).
std::string to_text(const pb::Message& message, MessageTypes& types) {
  AnyTypeFinder finder;
  pb::TextFormat::Printer printer;
  printer.SetUseUtf8StringEscaping(true);
  printer.SetFinder(&finder);
  printer.SetExpandAny(any_payloads_printable(message, finder, types.factory));
  std::string text;
  if (!printer.PrintToString(message, &text)) {
    throw Error(CKPT_ERROR_INTERNAL, "cannot print protobuf message " +
                                         message.GetDescriptor()->full_name() +
                                         " as text format");
  }
  return text;
}

// Throws CKPT_ERROR_DATA_LOSS naming `path` when the text format `text`
// opens more than kMaxTextDepth messages ('{' or '<') at once. Linear, no
// recursion; quoted strings and '#' comments are skipped.
void check_text_depth(const std::string& text, const std::string& path) {
  size_t depth = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"' || c == '\'') {
      // A string ends at its unescaped quote, or (unterminated) at the line.
      for (++i; i < text.size() && text[i] != c && text[i] != '\n'; ++i) {
        if (text[i] == '\\') ++i;
      }
    } else if (c == '#') {
      while (i < text.size() && text[i] != '\n') ++i;
    } else if (c == '{' || c == '<') {
      if (++depth > kMaxTextDepth) {
        throw Error(CKPT_ERROR_DATA_LOSS,
                    path + ": text format nested deeper than " +
                        std::to_string(kMaxTextDepth) + " levels");
      }
    } else if ((c == '}' || c == '>') && depth > 0) {
      --depth;
    }
  }
}

// Keeps the first text format error as "line:column: message" (1-based).
class TextErrors final : public pb::io::ErrorCollector {
 public:
  void AddError(int line, pb::io::ColumnNumber column,
                const std::string& message) override {
    if (first_.empty()) {
      first_ = std::to_string(line + 1) + ":" + std::to_string(column + 1) +
               ": " + message;
    }
  }
  void AddWarning(int, pb::io::ColumnNumber, const std::string&) override {}
  const std::string& first() const { return first_; }

 private:
  std::string first_;
};

// The wire bytes of `message`, map entries in key order.
std::string serialize_deterministically(const pb::Message& message) {
  std::string bytes;
  {
    pb::io::StringOutputStream stream(&bytes);
    pb::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    if (!message.SerializePartialToCodedStream(&coded)) {
      throw Error(CKPT_ERROR_INTERNAL,
                  "cannot serialize protobuf message " +
                      message.GetDescriptor()->full_name());
    }
  }
  return bytes;
}

// ----------------------------------------------------------------- handler

class ProtoHandler final : public ckpt::sdk::Handler {
 public:
  explicit ProtoHandler(const std::string& config_json)
      : filename_(ckpt::sdk::filename_option(config_json, kDefaultFilename,
                                             "proto handler")) {}

  bool is_handleable(const ckpt_value& value) override {
    return value.kind == CKPT_VALUE_PROTO && value.proto != nullptr;
  }

  ckpt_answer is_abstract_handleable(
      const ckpt_value& abstract_value) override {
    return abstract_value.kind == CKPT_VALUE_PROTO_TYPE &&
                   abstract_value.proto != nullptr
               ? CKPT_ANSWER_YES
               : CKPT_ANSWER_NO;
  }

  ckpt::sdk::SaveWork save(const ckpt::sdk::Call& call, const ckpt_value& value,
                           ckpt::sdk::RetainedValue) override {
    if (!is_handleable(value)) {
      throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                  "the proto handler saves protobuf messages, not this value");
    }
    if (!call.is_primary_host) return nullptr;
    // The snapshot is the text: parse and print now, write in the background.
    MessageType type = MessageType::of(*value.proto);
    std::shared_ptr<pb::Message> message = type.new_message();
    if (value.proto->bytes_len > static_cast<size_t>(INT_MAX) ||
        !message->ParsePartialFromArray(
            value.proto->bytes, static_cast<int>(value.proto->bytes_len))) {
      throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                  "the bytes of protobuf message " + type.full_name +
                      " do not parse as that type");
    }
    if (!message->IsInitialized()) {
      throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                  "protobuf message " + type.full_name +
                      " is missing required fields: " +
                      message->InitializationErrorString());
    }
    std::string text = to_text(*message, *type.types);
    std::string path = ckpt::sdk::join_path(call.directory, filename_);
    return [path, text = std::move(text), mode = call.file_mode] {
      ckpt::sdk::write_file(path, text, mode);
    };
  }

  ckpt::sdk::LoadWork load(const ckpt::sdk::Call& call,
                           const ckpt_value* abstract_value,
                           ckpt::sdk::RetainedValue) override {
    if (abstract_value == nullptr ||
        abstract_value->kind != CKPT_VALUE_PROTO_TYPE ||
        abstract_value->proto == nullptr) {
      throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                  "loading protobuf checkpointable '" +
                      call.checkpointable_name +
                      "' needs its message type as the abstract "
                      "checkpointable (e.g. ckpt::proto_type<T>())");
    }
    MessageType type = MessageType::of(*abstract_value->proto);
    std::string path = ckpt::sdk::join_path(call.directory, filename_);
    return [path, type = std::move(type)] {
      std::string text;
      if (!ckpt::sdk::read_file_if_exists(path, text)) {
        throw Error(CKPT_ERROR_NOT_FOUND, "no protobuf text file " + path);
      }
      check_text_depth(text, path);
      std::shared_ptr<pb::Message> message = type.new_message();
      TextErrors errors;
      pb::TextFormat::Parser parser;
      parser.RecordErrorsTo(&errors);
      // Its default is no limit at all.
      parser.SetRecursionLimit(kMaxMessageDepth);
      if (!parser.ParseFromString(text, message.get())) {
        std::string reason =
            errors.first().empty() ? " cannot be parsed" : ":" + errors.first();
        throw Error(CKPT_ERROR_DATA_LOSS, path + reason +
                                              " (reading it as text format " +
                                              type.full_name + ")");
      }
      return ckpt::sdk::OutValue::proto(type.full_name,
                                        serialize_deterministically(*message),
                                        type.descriptor_set);
    };
  }

 private:
  std::string filename_;
};

}  // namespace

CKPT_PLUGIN("proto", registrar) {
  registrar.handler_type<ProtoHandler>(
      kTypestr,
      {"orbax.checkpoint.experimental.v1._src.handlers.proto_handler."
       "ProtoHandler",
       "orbax.checkpoint._src.handlers.proto_checkpoint_handler."
       "ProtoCheckpointHandler"},
      "protobuf messages, as text format proto.pbtxt",
      CKPT_CAPABILITY_LOAD_NEEDS_ABSTRACT);
  registrar.registration(kTypestr);
}
