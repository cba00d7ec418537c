// The proto plugin: messages round-trip through text format, the handler
// claims what Orbax's ProtoHandler claims, and every bad input is a clear
// error, never a protobuf log line or abort.
#include <ckpt/context.h>
#include <ckpt/errors.h>
#include <ckpt/handler.h>
#include <ckpt/proto.h>
#include <ckpt/registry.h>
#include <google/protobuf/stubs/logging.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include "proto_samples.h"
#include "test_util.h"

using namespace ckpt;
using namespace ckpt::test;

namespace {

// Collects what protobuf logs while it lives.
class ProtobufLogCapture {
 public:
  ProtobufLogCapture() {
    lines().clear();
    previous_ = google::protobuf::SetLogHandler(&ProtobufLogCapture::handle);
  }
  ~ProtobufLogCapture() { google::protobuf::SetLogHandler(previous_); }
  std::vector<std::string> captured() const {
    std::lock_guard<std::mutex> lock(mutex());
    return lines();
  }

 private:
  static void handle(google::protobuf::LogLevel, const char* file, int line,
                     const std::string& message) {
    std::lock_guard<std::mutex> lock(mutex());
    lines().push_back(std::string(file) + ":" + std::to_string(line) + ": " +
                      message);
  }
  static std::vector<std::string>& lines() {
    static std::vector<std::string> lines;
    return lines;
  }
  static std::mutex& mutex() {
    static std::mutex mutex;
    return mutex;
  }
  google::protobuf::LogHandler* previous_;
};

}  // namespace

TEST_CASE(
    "a message with every kind of field round-trips through the proto "
    "plugin",
    "[proto]") {
  RunConfig config = sample_config();
  TempDir dir;
  auto h = proto_handler();
  save_with(*h, dir / "cfg", proto_value(config));
  CHECK(fs::exists(dir / "cfg" / "proto.pbtxt"));
  Value type = proto_type<RunConfig>();
  Value loaded = load_with(*h, dir / "cfg", &type);
  REQUIRE(loaded.kind() == Value::Kind::kProto);
  CHECK(loaded.as_proto().full_name == "ckpt.test.RunConfig");
  RunConfig back = from_proto_value<RunConfig>(loaded);
  CHECK(wire_bytes(back) == wire_bytes(config));
  CHECK(back.name() == config.name());
  CHECK(back.data_source_case() == RunConfig::kPath);
  CHECK(back.has_seed_override());
  CHECK(back.seed_override() == 0);
  CHECK_FALSE(back.has_note());
  CHECK(back.blob() == config.blob());
  CHECK(back.metrics().at("zeta") == -1e300);
  Optimizer packed;
  REQUIRE(back.extra().UnpackTo(&packed));
  CHECK(packed.name() == "packed in an Any");
  CHECK(back.params().fields().at("activation").string_value() == "gelu");
}

TEST_CASE(
    "proto.pbtxt is readable text format with UTF-8, enums and an "
    "expanded Any",
    "[proto]") {
  TempDir dir;
  save_with(*proto_handler(), dir / "cfg", proto_value(sample_config()));
  std::string text = read_text(dir / "cfg" / "proto.pbtxt");
  INFO(text);
  CHECK(text.find("学習") != std::string::npos);
  CHECK(text.find("phase: PHASE_TRAIN") != std::string::npos);
  CHECK(text.find("[type.googleapis.com/ckpt.test.Optimizer]") !=
        std::string::npos);
}

TEST_CASE(
    "a proto handler with a custom filename bound to a name in a "
    "Context saves that name only, as that file",
    "[proto][registry]") {
  HandlerPtr cfg_handler = proto_handler({{"filename", "cfg.pbtxt"}});
  ContextOptions options;
  options.checkpointables_options =
      CheckpointablesOptions::create_with_handlers({{"cfg", cfg_handler}});
  Context context(options);
  Value value = proto_value(sample_config());
  HandlerPtr resolved =
      resolve_save_handler(Context::current().registry(), "cfg", value);
  CHECK(resolved == cfg_handler);
  HandlerPtr other =
      resolve_save_handler(Context::current().registry(), "other", value);
  CHECK(other != cfg_handler);
  CHECK(other->typestr() == kProtoTypestr);
  Value type = proto_type<RunConfig>();
  CHECK(resolve_load_handler(Context::current().registry(), "cfg", &type,
                             std::string(kProtoTypestr)) == cfg_handler);

  TempDir dir;
  save_with(*resolved, dir / "cfg", value);
  CHECK(fs::exists(dir / "cfg" / "cfg.pbtxt"));
  CHECK_FALSE(fs::exists(dir / "cfg" / "proto.pbtxt"));
  CHECK(wire_bytes(from_proto_value<RunConfig>(load_with(
            *resolved, dir / "cfg", &type))) == wire_bytes(sample_config()));
}

TEST_CASE(
    "the proto handler is registered generally and answers to Orbax's "
    "typestrs",
    "[proto][registry]") {
  HandlerPtr general;
  for (const RegistryEntry& entry : global_registry().get_all_entries()) {
    if (entry.handler->typestr() == kProtoTypestr) {
      CHECK_FALSE(entry.checkpointable_name.has_value());
      general = entry.handler;
    }
  }
  REQUIRE(general);
  std::vector<std::string> secondary = general->info().secondary_typestrs;
  CHECK(secondary ==
        std::vector<std::string>{
            "orbax.checkpoint.experimental.v1._src.handlers.proto_handler."
            "ProtoHandler",
            "orbax.checkpoint._src.handlers.proto_checkpoint_handler."
            "ProtoCheckpointHandler"});
  Value type = proto_type<RunConfig>();
  for (const std::string& recorded : secondary) {
    CHECK(resolve_load_handler(global_registry(), "cfg", &type, recorded)
              ->typestr() == kProtoTypestr);
  }
  // A message goes to the proto handler by capability.
  CHECK(resolve_save_handler(global_registry(), "anything",
                             proto_value(sample_config()))
            ->typestr() == kProtoTypestr);
}

TEST_CASE("the proto handler handles messages and accepts message types only",
          "[proto]") {
  auto h = proto_handler();
  CHECK(h->is_handleable(proto_value(sample_config())));
  CHECK_FALSE(h->is_handleable(proto_type<RunConfig>()));
  CHECK_FALSE(h->is_handleable(Value::json({{"a", 1}})));
  CHECK_FALSE(h->is_handleable(Value::dict({{"a", 1}})));
  CHECK(h->is_abstract_handleable(proto_type<RunConfig>()) == Answer::kYes);
  CHECK(h->is_abstract_handleable(proto_value(sample_config())) == Answer::kNo);
  CHECK(h->is_abstract_handleable(Value::json_type()) == Answer::kNo);
  CHECK_THROWS_AS(h->metadata(call_for("/nonexistent", "cfg")),
                  UnimplementedError);
}

TEST_CASE(
    "loading without a message type is an invalid argument in the "
    "blocking tier",
    "[proto][errors]") {
  auto h = proto_handler();
  TempDir dir;
  save_with(*h, dir / "cfg", proto_value(sample_config()));
  CallContext call = call_for(dir / "cfg", "cfg");
  // Thrown by load() itself, not by the future it would return.
  expect_error<InvalidArgumentError>([&] { (void)h->load(call, nullptr); },
                                     {"cfg", "message type"});
  Value not_a_type = Value::json_type();
  expect_error<InvalidArgumentError>([&] { (void)h->load(call, &not_a_type); },
                                     {"message type"});
}

TEST_CASE(
    "loading as another message type fails naming the file and the "
    "unknown field",
    "[proto][errors]") {
  auto h = proto_handler();
  TempDir dir;
  save_with(*h, dir / "cfg", proto_value(sample_config()));
  Value other = proto_type<Other>();
  expect_error<DataLossError>(
      [&] { load_with(*h, dir / "cfg", &other); },
      {"proto.pbtxt:1:", "ckpt.test.Other", "\"name\""});
}

TEST_CASE("a malformed proto.pbtxt is a data loss error with line and column",
          "[proto][errors]") {
  auto h = proto_handler();
  TempDir dir;
  fs::create_directories(dir / "cfg");
  write_text(dir / "cfg" / "proto.pbtxt",
             "name: \"ok\"\nstep: 3\noptimizer {\n  name: oops\n");
  Value type = proto_type<RunConfig>();
  std::string message = expect_error<DataLossError>(
      [&] { load_with(*h, dir / "cfg", &type); },
      {(dir / "cfg" / "proto.pbtxt").string() + ":4:9:",
       "ckpt.test.RunConfig"});
  (void)message;
}

TEST_CASE("a missing proto.pbtxt is a not found error naming the file",
          "[proto][errors]") {
  auto h = proto_handler({{"filename", "cfg.pbtxt"}});
  TempDir dir;
  fs::create_directories(dir / "cfg");
  Value type = proto_type<RunConfig>();
  expect_error<NotFoundError>([&] { load_with(*h, dir / "cfg", &type); },
                              {(dir / "cfg" / "cfg.pbtxt").string()});
}

TEST_CASE("bad message values and types are refused with clear errors",
          "[proto][errors]") {
  auto h = proto_handler();
  TempDir dir;
  ProtoMessage garbage = to_proto_message(sample_config());
  garbage.bytes = "\xff\xff\xff";
  expect_error<InvalidArgumentError>(
      [&] { save_with(*h, dir / "a", Value::proto(garbage)); },
      {"ckpt.test.RunConfig", "do not parse"});
  ProtoMessage no_descriptors = to_proto_message(sample_config());
  no_descriptors.descriptor_set.clear();
  expect_error<InvalidArgumentError>(
      [&] { save_with(*h, dir / "b", Value::proto(no_descriptors)); },
      {"descriptor set"});
  ProtoMessage unknown_type = to_proto_message(sample_config());
  unknown_type.full_name = "ckpt.test.Missing";
  expect_error<InvalidArgumentError>(
      [&] { save_with(*h, dir / "c", Value::proto(unknown_type)); },
      {"ckpt.test.Missing", "does not define it"});
  // A set missing an import (the set holds only the message's own file).
  google::protobuf::FileDescriptorSet partial;
  RunConfig::descriptor()->file()->CopyTo(partial.add_file());
  ProtoMessage missing_import = to_proto_message(sample_config());
  missing_import.descriptor_set = partial.SerializeAsString();
  expect_error<InvalidArgumentError>(
      [&] { save_with(*h, dir / "d", Value::proto(missing_import)); },
      {"google/protobuf/any.proto"});
}

TEST_CASE("protobuf logs nothing on the proto plugin's error paths",
          "[proto][errors]") {
  ProtobufLogCapture capture;
  auto h = proto_handler();
  TempDir dir;
  Value other = proto_type<Other>();
  Value type = proto_type<RunConfig>();
  save_with(*h, dir / "cfg", proto_value(sample_config()));
  CHECK_THROWS(load_with(*h, dir / "cfg", &other));
  write_text(dir / "cfg" / "proto.pbtxt", "name: {{{");
  CHECK_THROWS(load_with(*h, dir / "cfg", &type));
  CHECK_THROWS(load_with(*h, dir / "missing", &type));
  ProtoMessage garbage = to_proto_message(sample_config());
  garbage.bytes = "\xff";
  CHECK_THROWS(save_with(*h, dir / "x", Value::proto(garbage)));
  google::protobuf::FileDescriptorSet partial;
  RunConfig::descriptor()->file()->CopyTo(partial.add_file());
  garbage = to_proto_message(sample_config());
  garbage.descriptor_set = partial.SerializeAsString();
  CHECK_THROWS(save_with(*h, dir / "y", Value::proto(garbage)));
  // An Any whose payload type is unknown is written unexpanded, quietly.
  RunConfig config;
  config.mutable_extra()->set_type_url("type.googleapis.com/no.such.Type");
  config.mutable_extra()->set_value("\x08\x01");
  save_with(*h, dir / "any", proto_value(config));
  CHECK(wire_bytes(from_proto_value<RunConfig>(
            load_with(*h, dir / "any", &type))) == wire_bytes(config));
  CHECK(capture.captured().empty());
  for (const std::string& line : capture.captured()) WARN(line);
}

TEST_CASE("concurrent saves and loads of one message type all succeed",
          "[proto]") {
  auto h = proto_handler();
  TempDir dir;
  Value type = proto_type<RunConfig>();
  auto config_for = [](int i) {
    RunConfig c = sample_config();
    c.set_step(i);
    return c;
  };
  std::vector<std::future<std::string>> results;
  for (int i = 0; i < 8; ++i) {
    results.push_back(std::async(std::launch::async, [&, i] {
      fs::path folder = dir / ("cfg" + std::to_string(i));
      save_with(*h, folder, proto_value(config_for(i)));
      return wire_bytes(
          from_proto_value<RunConfig>(load_with(*h, folder, &type)));
    }));
  }
  for (int i = 0; i < 8; ++i) {
    CHECK(results[i].get() == wire_bytes(config_for(i)));
  }
}

TEST_CASE("the proto handler writes nothing on a non-primary host", "[proto]") {
  auto h = proto_handler();
  TempDir dir;
  fs::create_directories(dir / "cfg");
  CallContext call = call_for(dir / "cfg", "cfg");
  call.is_primary_host = false;
  h->save(call, proto_value(sample_config())).get();
  CHECK(fs::is_empty(dir / "cfg"));
}

TEST_CASE("a bad proto handler configuration is refused", "[proto][errors]") {
  CHECK_THROWS_AS(proto_handler({{"filename", "../escape.pbtxt"}}),
                  InvalidArgumentError);
  CHECK_THROWS_AS(proto_handler({{"filename", ""}}), InvalidArgumentError);
  CHECK_THROWS_AS(proto_handler({{"filename", 7}}), InvalidArgumentError);
}

TEST_CASE(
    "from_proto_value refuses values that are not a message of the "
    "requested type",
    "[proto][errors]") {
  Value config = proto_value(sample_config());
  Other other;
  expect_error<InvalidArgumentError>(
      [&] { from_proto_value(config, &other); },
      {"ckpt.test.Other", "ckpt.test.RunConfig"});
  expect_error<InvalidArgumentError>(
      [&] { from_proto_value(Value::json({1}), &other); }, {"ckpt.test.Other"});
  expect_error<InvalidArgumentError>(
      [&] { from_proto_value(proto_type<Other>(), &other); },
      {"ckpt.test.Other"});
  ProtoMessage garbage = to_proto_message(other);
  garbage.bytes = "\xff";
  expect_error<DataLossError>(
      [&] { from_proto_value(Value::proto(garbage), &other); },
      {"do not parse"});
}

TEST_CASE(
    "the descriptor set of a message holds its file after every "
    "dependency",
    "[proto]") {
  ProtoMessage message = to_proto_message(sample_config());
  google::protobuf::FileDescriptorSet set;
  REQUIRE(set.ParseFromString(message.descriptor_set));
  std::vector<std::string> names;
  for (const auto& file : set.file()) names.push_back(file.name());
  REQUIRE_FALSE(names.empty());
  CHECK(names.back() == "ckpt_test.proto");
  for (const char* dependency :
       {"google/protobuf/any.proto", "google/protobuf/duration.proto",
        "google/protobuf/struct.proto", "google/protobuf/timestamp.proto"}) {
    CHECK(std::count(names.begin(), names.end(), dependency) == 1);
  }
  CHECK(names.size() == 5);
}
