// A host app using both user plugins next to the shipped json handler.
// Run with CKPT_PLUGIN_PATH pointing at the folder holding the plugins.
#include <ckpt/ckpt.h>

#include <cstdio>
#include <cstring>
#include <memory>

#include "rng_state.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: host CHECKPOINT_DIR\n");
    return 2;
  }
  try {
    auto rng = std::make_shared<example_rng_state>();
    *rng = example_rng_state{{1, 2, 3, 4}, 17};
    ckpt::SaveOptions options;
    options.overwrite = true;
    ckpt::save_checkpointables(
        argv[1],
        {{"rng", ckpt::Value::object(EXAMPLE_RNG_TYPESTR, rng)},
         {"config", ckpt::Value::dict({{"optimizer", "adam"}, {"lr", 0.001}})},
         {"notes", ckpt::Value::json({{"text", "first run"}})}},
        options);

    for (const auto& [name, typestr] :
         ckpt::read_checkpoint_info(argv[1]).item_handlers) {
      std::printf("%s -> %s\n", name.c_str(), typestr.c_str());
    }
    auto restored = ckpt::load_checkpointables(
        argv[1], {{"rng", ckpt::Value::object(EXAMPLE_RNG_TYPESTR, nullptr)},
                  {"config", ckpt::Value()}});
    auto* state = static_cast<const example_rng_state*>(
        restored[0].second.as_object().object.get());
    std::printf("rng restored: draws=%llu s[3]=%llu\n",
                static_cast<unsigned long long>(state->draws),
                static_cast<unsigned long long>(state->s[3]));
    std::printf("config restored: optimizer=%s\n",
                restored[1].second.at("optimizer").as_string().c_str());
    return std::memcmp(state, rng.get(), sizeof *state) == 0 ? 0 : 1;
  } catch (const ckpt::Error& e) {
    std::fprintf(stderr, "host: %s\n", e.what());
    return 1;
  }
}
