// The core's start-up in a process.
#ifndef CKPT_SRC_PLUGIN_HOST_STARTUP_H_
#define CKPT_SRC_PLUGIN_HOST_STARTUP_H_

namespace ckpt::internal {

// Done once per process, before any handler is resolved: the core's own
// handler types (the stateful handler), then the default plugins (the
// built-in folder, then CKPT_PLUGIN_PATH), all registered in the global
// registry in that order. Every public entry point of the core calls it
// first; nothing below them loads plugins, and registries are plain data.
// Thread-safe; a no-op after the first call.
void start_up();

}  // namespace ckpt::internal

#endif  // CKPT_SRC_PLUGIN_HOST_STARTUP_H_
