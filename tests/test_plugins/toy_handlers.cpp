// Toy handler types for the resolution tests: FooHandler, BarHandler and
// BazHandler. Each saves dicts tagged {"type": T, "data": "..."} whose T is
// in its "handles" list (default: its own letter-name), and accepts
// abstract dicts {"type": T} for T in its "accepts" list; "defer": true
// makes it answer DEFER instead of NO. Loading returns
// {"type": T, "data": ..., "loaded_by": <typestr>} so tests see who ran.
// Saving {"type": "os-error", "data": "<errno>"} fails in the blocking tier
// with that OS error (std::system_error, as std::filesystem throws).
// finalize_save (ABI 1.4) copies toy.txt, as it is then, to finalized.txt;
// for the tag "finalize-error" it fails instead.
#include <ckpt/sdk/plugin.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <system_error>

namespace {

using ckpt::sdk::Error;
using ckpt::sdk::OutValue;

const ckpt_value* child(const ckpt_value& dict, const std::string& key) {
  if (dict.kind != CKPT_VALUE_DICT) return nullptr;
  for (size_t i = 0; i < dict.count; ++i) {
    if (key == dict.keys[i]) return &dict.children[i];
  }
  return nullptr;
}

std::string tag_of(const ckpt_value& value) {
  const ckpt_value* type = child(value, "type");
  if (!type || type->kind != CKPT_VALUE_STRING) return "";
  return std::string(ckpt::sdk::string_of(*type));
}

template <const char* kName>
class ToyHandler final : public ckpt::sdk::Handler {
 public:
  explicit ToyHandler(const std::string& config_json) {
    auto config = nlohmann::json::parse(config_json);
    handles_ = config.value("handles", std::set<std::string>{kName});
    accepts_ = config.value("accepts", std::set<std::string>{kName});
    defer_ = config.value("defer", false);
  }

  bool is_handleable(const ckpt_value& value) override {
    return handles_.count(tag_of(value)) > 0;
  }
  ckpt_answer is_abstract_handleable(const ckpt_value& value) override {
    if (accepts_.count(tag_of(value))) return CKPT_ANSWER_YES;
    return defer_ ? CKPT_ANSWER_DEFER : CKPT_ANSWER_NO;
  }

  ckpt::sdk::SaveWork save(const ckpt::sdk::Call& call, const ckpt_value& value,
                           ckpt::sdk::RetainedValue) override {
    const ckpt_value* data = child(value, "data");
    std::string text = data && data->kind == CKPT_VALUE_STRING
                           ? std::string(ckpt::sdk::string_of(*data))
                           : "";
    std::string tag = tag_of(value);
    if (tag == "os-error") {
      throw std::system_error(std::stoi(text), std::generic_category(),
                              "toy save into " + call.directory);
    }
    std::string path = call.directory + "/toy.txt";
    return [path, tag, text] {
      std::ofstream out(path);
      out << tag << "\n" << text;
      if (!out) throw Error(CKPT_ERROR_INTERNAL, "cannot write " + path);
    };
  }

  void finalize_save(const ckpt::sdk::Call& call) override {
    std::ifstream in(call.directory + "/toy.txt");
    std::stringstream text;
    text << in.rdbuf();
    if (text.str().rfind("finalize-error", 0) == 0) {
      throw Error(CKPT_ERROR_DATA_LOSS,
                  "toy finalize refused " + call.directory);
    }
    std::ofstream out(call.directory + "/finalized.txt");
    out << (in ? text.str() : "no toy.txt") << " (of " << call.process_count
        << ")";
  }

  ckpt::sdk::LoadWork load(const ckpt::sdk::Call& call, const ckpt_value*,
                           ckpt::sdk::RetainedValue) override {
    std::string path = call.directory + "/toy.txt";
    return [path] {
      std::ifstream in(path);
      if (!in) throw Error(CKPT_ERROR_NOT_FOUND, "no " + path);
      std::string tag, data;
      std::getline(in, tag);
      std::getline(in, data);
      OutValue out = OutValue::dict();
      out.add("type", OutValue::string(tag));
      out.add("data", OutValue::string(data));
      out.add("loaded_by",
              OutValue::string(std::string("test.") + kName + "Handler"));
      return out;
    };
  }

 private:
  std::set<std::string> handles_, accepts_;
  bool defer_ = false;
};

constexpr char kFoo[] = "Foo";
constexpr char kBar[] = "Bar";
constexpr char kBaz[] = "Baz";

}  // namespace

CKPT_PLUGIN("toy", registrar) {
  registrar.handler_type<ToyHandler<kFoo>>("test.FooHandler", {"legacy.Foo"});
  registrar.handler_type<ToyHandler<kBar>>("test.BarHandler");
  registrar.handler_type<ToyHandler<kBaz>>("test.BazHandler");
}
