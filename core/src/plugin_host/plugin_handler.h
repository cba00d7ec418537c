// What the core's engine needs to know about handlers that are plugins.
#ifndef CKPT_SRC_PLUGIN_HOST_PLUGIN_HANDLER_H_
#define CKPT_SRC_PLUGIN_HOST_PLUGIN_HANDLER_H_

#include <ckpt/handler.h>

namespace ckpt::internal {

// True when `handler` calls a plugin across the C ABI (made by
// plugin_handler_factory). Such a handler sees only what crossed the ABI,
// and what its background tier keeps it keeps through the host's retain
// (value_retain): the array owners, strings and objects of the value. A
// host C++ handler (or the built-in stateful one) may reach anything of
// the caller's.
bool is_plugin_handler(const Handler& handler);

}  // namespace ckpt::internal

#endif  // CKPT_SRC_PLUGIN_HOST_PLUGIN_HANDLER_H_
