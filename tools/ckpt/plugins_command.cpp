// `ckpt plugins`: the effective registry in registration order, and the
// plugins that failed to load.
#include <ckpt/plugins.h>
#include <ckpt/registry.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"

namespace ckpt::tool {

namespace {
std::string abi_text(const HandlerInfo& info) {
  return std::to_string(info.abi_major) + "." + std::to_string(info.abi_minor);
}
}  // namespace

int run_plugins(const Common& common) {
  Registry& registry = global_registry();
  const auto entries = registry.get_all_entries();
  const auto failures = plugin_failures();
  if (common.json) {
    nlohmann::ordered_json out;
    out["builtin_plugin_folder"] = builtin_plugin_folder().string();
    out["entries"] = nlohmann::ordered_json::array();
    for (const auto& e : entries) {
      const HandlerInfo& info = e.handler->info();
      out["entries"].push_back({
          {"typestr", info.typestr},
          {"secondary_typestrs", registry.get_secondary_typestrs(*e.handler)},
          {"checkpointable_name",
           e.checkpointable_name
               ? nlohmann::ordered_json(*e.checkpointable_name)
               : nlohmann::ordered_json(nullptr)},
          {"config", e.handler->config()},
          {"plugin", info.plugin_name},
          {"file", info.origin},
          {"abi_version", abi_text(info)},
          {"description", info.description},
      });
    }
    out["failures"] = nlohmann::ordered_json::array();
    for (const auto& f : failures) {
      out["failures"].push_back(
          {{"path", f.path.string()}, {"reason", f.reason}});
    }
    std::cout << out.dump(2) << "\n";
  } else {
    std::printf("%-3s %-38s %-10s %-5s %s\n", "#", "TYPESTR", "NAME", "ABI",
                "FILE");
    int i = 0;
    for (const auto& e : entries) {
      const HandlerInfo& info = e.handler->info();
      std::printf("%-3d %-38s %-10s %-5s %s\n", ++i, info.typestr.c_str(),
                  e.checkpointable_name ? e.checkpointable_name->c_str() : "*",
                  abi_text(info).c_str(), info.origin.c_str());
      for (const auto& t : registry.get_secondary_typestrs(*e.handler)) {
        std::printf("    also loads %s\n", t.c_str());
      }
      if (!e.handler->config().empty()) {
        std::printf("    config %s\n", e.handler->config().dump().c_str());
      }
    }
    for (const auto& f : failures) {
      std::printf("FAILED %s: %s\n", f.path.c_str(), f.reason.c_str());
    }
  }
  return failures.empty() ? 0 : 1;
}

}  // namespace ckpt::tool
