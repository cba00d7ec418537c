#include "plugin_host/startup.h"

#include <ckpt/plugins.h>
#include <ckpt/registry.h>

#include <mutex>

#include "handlers/handler_types.h"
#include "handlers/registry.h"
#include "plugin_host/plugin_loader.h"

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
