// A plugin compiled by the tests outside the meson tree, against
// sdk/include alone: proof that the SDK needs nothing else. It saves
// strings that start with "oot:" into oot.txt.
#include <ckpt/sdk/plugin.h>

#include <fstream>
#include <sstream>
#include <string>

namespace {

class OutOfTreeHandler final : public ckpt::sdk::Handler {
 public:
  explicit OutOfTreeHandler(const std::string&) {}
  bool is_handleable(const ckpt_value& value) override {
    return value.kind == CKPT_VALUE_STRING &&
           ckpt::sdk::string_of(value).substr(0, 4) == "oot:";
  }
  ckpt_answer is_abstract_handleable(const ckpt_value&) override {
    return CKPT_ANSWER_DEFER;
  }
  ckpt::sdk::SaveWork save(const ckpt::sdk::Call& call, const ckpt_value& value,
                           ckpt::sdk::RetainedValue) override {
    std::string text(ckpt::sdk::string_of(value));
    std::string path = call.directory + "/oot.txt";
    return [path, text] { std::ofstream(path) << text; };
  }
  ckpt::sdk::LoadWork load(const ckpt::sdk::Call& call, const ckpt_value*,
                           ckpt::sdk::RetainedValue) override {
    std::string path = call.directory + "/oot.txt";
    return [path] {
      std::ifstream in(path);
      std::stringstream text;
      text << in.rdbuf();
      return ckpt::sdk::OutValue::string(text.str());
    };
  }
};

}  // namespace

CKPT_PLUGIN("out-of-tree", registrar) {
  registrar.handler_type<OutOfTreeHandler>("test.OutOfTreeHandler", {},
                                           "strings starting with oot:");
  registrar.registration("test.OutOfTreeHandler");
  registrar.registration("test.OutOfTreeHandler", "notes");
}
