// Broken C++ plugins built with the SDK, one per preprocessor case.
#include <ckpt/sdk/plugin.h>

#include <stdexcept>

namespace {

// Saves anything tagged {"type": "Boom"}; its save and load throw.
class ThrowingHandler final : public ckpt::sdk::Handler {
 public:
  explicit ThrowingHandler(const std::string&) {}
  bool is_handleable(const ckpt_value& value) override {
    return value.kind == CKPT_VALUE_STRING &&
           ckpt::sdk::string_of(value) == "boom";
  }
  ckpt_answer is_abstract_handleable(const ckpt_value&) override {
    return CKPT_ANSWER_NO;
  }
  ckpt::sdk::SaveWork save(const ckpt::sdk::Call&, const ckpt_value&,
                           ckpt::sdk::RetainedValue) override {
    throw std::runtime_error("disk on fire");
  }
  ckpt::sdk::LoadWork load(const ckpt::sdk::Call&, const ckpt_value*,
                           ckpt::sdk::RetainedValue) override {
    return []() -> ckpt::sdk::OutValue {
      throw std::logic_error("cannot read the tea leaves");
    };
  }
};

}  // namespace

#if defined(BAD_DUPLICATE)
// Registers a typestr the json plugin already owns.
CKPT_PLUGIN("duplicate", registrar) {
  registrar.handler_type<ThrowingHandler>("ckpt.json.JsonHandler");
}
#elif defined(BAD_DUPLICATE_NAME)
// Asks for a default entry under `metrics`, which the json plugin has.
CKPT_PLUGIN("duplicate-name", registrar) {
  registrar.handler_type<ThrowingHandler>("test.GreedyHandler");
  registrar.registration("test.GreedyHandler", "metrics");
}
#elif defined(BAD_THROWS)
CKPT_PLUGIN("throwing", registrar) {
  registrar.handler_type<ThrowingHandler>("test.ThrowingHandler");
}
#endif
