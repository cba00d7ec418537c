// The plugin loader's side of the core's start-up.
#ifndef CKPT_SRC_PLUGIN_HOST_PLUGIN_LOADER_H_
#define CKPT_SRC_PLUGIN_HOST_PLUGIN_LOADER_H_

#include <ckpt/registry.h>

namespace ckpt::internal {

// Loads the built-in plugin folder, then each folder of CKPT_PLUGIN_PATH,
// into `global`. Called once, by start_up().
void load_default_plugins(Registry& global);

}  // namespace ckpt::internal

#endif  // CKPT_SRC_PLUGIN_HOST_PLUGIN_LOADER_H_
