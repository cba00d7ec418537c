// A second user plugin: takes over the checkpointable name `config` from
// the shipped json handler through a name scope, and stores flat JSON
// objects as `key = value` lines in config.ini.
#include <ckpt/sdk/files.h>
#include <ckpt/sdk/plugin.h>

#include <sstream>
#include <string>

namespace {

class IniConfigHandler final : public ckpt::sdk::Handler {
 public:
  explicit IniConfigHandler(const std::string&) {}

  // Bound by name, so resolution never asks; answer honestly anyway.
  bool is_handleable(const ckpt_value& value) override {
    return value.kind == CKPT_VALUE_DICT;
  }
  ckpt_answer is_abstract_handleable(const ckpt_value&) override {
    return CKPT_ANSWER_DEFER;
  }

  ckpt::sdk::SaveWork save(const ckpt::sdk::Call& call, const ckpt_value& value,
                           ckpt::sdk::RetainedValue) override {
    if (value.kind != CKPT_VALUE_DICT) {
      throw ckpt::sdk::Error(
          CKPT_ERROR_INVALID_ARGUMENT,
          "config must be a flat dict of strings and numbers");
    }
    std::ostringstream text;
    for (size_t i = 0; i < value.count; ++i) {
      const ckpt_value& v = value.children[i];
      text << value.keys[i] << " = ";
      switch (v.kind) {
        case CKPT_VALUE_STRING:
          text << ckpt::sdk::string_of(v);
          break;
        case CKPT_VALUE_INT:
          text << v.int_value;
          break;
        case CKPT_VALUE_DOUBLE:
          text << v.double_value;
          break;
        default:
          throw ckpt::sdk::Error(CKPT_ERROR_INVALID_ARGUMENT,
                                 std::string("config key '") + value.keys[i] +
                                     "' is not a string or number");
      }
      text << "\n";
    }
    std::string path = call.directory + "/config.ini";
    return [path, text = text.str(), mode = call.file_mode] {
      ckpt::sdk::write_file(path, text, mode);
    };
  }

  ckpt::sdk::LoadWork load(const ckpt::sdk::Call& call, const ckpt_value*,
                           ckpt::sdk::RetainedValue) override {
    std::string path = call.directory + "/config.ini";
    return [path] {
      std::string text;
      if (!ckpt::sdk::read_file_if_exists(path, text)) {
        throw ckpt::sdk::Error(CKPT_ERROR_NOT_FOUND, "missing " + path);
      }
      ckpt::sdk::OutValue out = ckpt::sdk::OutValue::dict();
      std::istringstream lines(text);
      std::string line;
      while (std::getline(lines, line)) {
        auto eq = line.find(" = ");
        if (eq == std::string::npos) continue;
        out.add(line.substr(0, eq),
                ckpt::sdk::OutValue::string(line.substr(eq + 3)));
      }
      return out;
    };
  }
};

}  // namespace

CKPT_PLUGIN("ini-config", registrar) {
  registrar.handler_type<IniConfigHandler>(
      "example.IniConfigHandler", {}, "the `config` checkpointable as INI");
  registrar.registration("example.IniConfigHandler", "config");
}
