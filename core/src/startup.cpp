#include "startup.h"

#include <ckpt/plugins.h>
#include <ckpt/registry.h>

#include <mutex>

#include "handler_types.h"
#include "plugin_loader_internal.h"
#include "registry_internal.h"

namespace ckpt {

namespace internal {

void start_up() {
  static std::once_flag once;
  std::call_once(once, [] {
    Registry& global = global_registry_data();
    auto stateful = stateful_handler_type();
    add_handler_type(stateful);
    global.add(stateful->factory(nlohmann::json::object()));
    load_default_plugins(global);
  });
}

}  // namespace internal

void ensure_default_plugins_loaded() { internal::start_up(); }

}  // namespace ckpt
