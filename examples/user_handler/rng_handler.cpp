// A user-written handler plugin: saves example_rng_state objects as
// rng.txt. Built against the ckpt SDK alone (pkg-config ckpt-sdk).
#include <ckpt/sdk/files.h>
#include <ckpt/sdk/plugin.h>

#include <cstring>
#include <memory>
#include <sstream>

#include "rng_state.h"

namespace {

bool is_rng(const ckpt_value& v) {
  return v.kind == CKPT_VALUE_OBJECT && v.object &&
         std::strcmp(v.object->typestr, EXAMPLE_RNG_TYPESTR) == 0;
}

class RngStateHandler final : public ckpt::sdk::Handler {
 public:
  explicit RngStateHandler(const std::string&) {}

  bool is_handleable(const ckpt_value& value) override { return is_rng(value); }
  ckpt_answer is_abstract_handleable(const ckpt_value& value) override {
    return is_rng(value) ? CKPT_ANSWER_YES : CKPT_ANSWER_NO;
  }

  ckpt::sdk::SaveWork save(const ckpt::sdk::Call& call, const ckpt_value& value,
                           ckpt::sdk::RetainedValue) override {
    // Blocking tier: copy the state; the generator may move on after this.
    example_rng_state snapshot =
        *static_cast<const example_rng_state*>(value.object->pointer);
    std::string path = call.directory + "/rng.txt";
    unsigned mode = call.file_mode;
    return [snapshot, path, mode] {
      std::ostringstream text;
      for (uint64_t word : snapshot.s) text << word << "\n";
      text << snapshot.draws << "\n";
      ckpt::sdk::write_file(path, text.str(), mode);
    };
  }

  ckpt::sdk::LoadWork load(const ckpt::sdk::Call& call, const ckpt_value*,
                           ckpt::sdk::RetainedValue) override {
    std::string path = call.directory + "/rng.txt";
    return [path] {
      std::string text;
      if (!ckpt::sdk::read_file_if_exists(path, text)) {
        throw ckpt::sdk::Error(CKPT_ERROR_NOT_FOUND, "missing " + path);
      }
      auto state = std::make_shared<example_rng_state>();
      std::istringstream in(text);
      for (uint64_t& word : state->s) in >> word;
      in >> state->draws;
      if (!in) throw ckpt::sdk::Error(CKPT_ERROR_DATA_LOSS, "corrupt " + path);
      return ckpt::sdk::OutValue::object(EXAMPLE_RNG_TYPESTR, state);
    };
  }
};

}  // namespace

CKPT_PLUGIN("rng", registrar) {
  registrar.handler_type<RngStateHandler>("example.RngStateHandler", {},
                                          "xoshiro256** states as rng.txt");
  registrar.registration("example.RngStateHandler");
}
