#include <ckpt/errors.h>
#include <ckpt/handler.h>
#include <ckpt/plugins.h>

#include "handlers/handler_types.h"
#include "plugin_host/startup.h"
#include "value/utf8_checks.h"

namespace ckpt {

const nlohmann::json& Handler::config() const {
  static const nlohmann::json empty = nlohmann::json::object();
  return empty;
}

std::optional<Value> Handler::metadata(const CallContext& call) const {
  throw UnimplementedError("handler " + typestr() +
                           " has no metadata for checkpointable '" +
                           call.checkpointable_name + "'");
}

void Handler::finalize_save(const CallContext& call) const { (void)call; }

HandlerPtr make_handler(const std::string& typestr,
                        const nlohmann::json& config) {
  internal::start_up();
  auto type = internal::find_handler_type(typestr);
  if (!type) {
    std::string known;
    for (const auto& t : internal::all_handler_types()) {
      known += (known.empty() ? "" : ", ") + t->info.typestr;
    }
    throw NoEntryError(
        "no handler type '" + typestr +
        "' is loaded; known types: " + (known.empty() ? "none" : known));
  }
  internal::check_json_text(config, "the configuration of handler " + typestr);
  return type->factory(config.is_null() ? nlohmann::json::object() : config);
}

std::vector<HandlerInfo> handler_types() {
  internal::start_up();
  std::vector<HandlerInfo> out;
  for (const auto& t : internal::all_handler_types()) out.push_back(t->info);
  return out;
}

}  // namespace ckpt
