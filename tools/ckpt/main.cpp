// ckpt -- the command-line tool. Exit codes: 0 ok, 1 problem found,
// 2 usage error.
#include <CLI/CLI.hpp>
#include <ckpt/errors.h>
#include <ckpt/plugins.h>
#include <ckpt/registry.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace {

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : sep) + item;
  return out;
}

// `ckpt plugins`: the effective registry in registration order.
int run_plugins(bool as_json) {
  const auto entries = ckpt::global_registry().get_all_entries();
  const auto failures = ckpt::plugin_failures();
  if (as_json) {
    nlohmann::ordered_json out;
    out["builtin_plugin_folder"] = ckpt::builtin_plugin_folder().string();
    out["entries"] = nlohmann::ordered_json::array();
    for (const auto& e : entries) {
      const ckpt::HandlerInfo& info = e.handler->info();
      nlohmann::ordered_json j;
      j["typestr"] = info.typestr;
      j["secondary_typestrs"] =
          ckpt::global_registry().get_secondary_typestrs(*e.handler);
      j["checkpointable_name"] =
          e.checkpointable_name ? nlohmann::ordered_json(*e.checkpointable_name)
                                : nlohmann::ordered_json(nullptr);
      j["config"] = e.handler->config();
      j["plugin"] = info.plugin_name;
      j["file"] = info.origin;
      j["abi_version"] = std::to_string(info.abi_major) + "." +
                         std::to_string(info.abi_minor);
      j["description"] = info.description;
      out["entries"].push_back(j);
    }
    out["failures"] = nlohmann::ordered_json::array();
    for (const auto& f : failures) {
      out["failures"].push_back({{"path", f.path.string()}, {"reason", f.reason}});
    }
    std::cout << out.dump(2) << "\n";
  } else {
    std::printf("%-3s %-38s %-10s %-5s %s\n", "#", "TYPESTR", "NAME", "ABI",
                "FILE");
    int i = 0;
    for (const auto& e : entries) {
      const ckpt::HandlerInfo& info = e.handler->info();
      std::printf("%-3d %-38s %-10s %-5s %s\n", ++i, info.typestr.c_str(),
                  e.checkpointable_name ? e.checkpointable_name->c_str() : "*",
                  (std::to_string(info.abi_major) + "." +
                   std::to_string(info.abi_minor))
                      .c_str(),
                  info.origin.c_str());
      auto secondary = ckpt::global_registry().get_secondary_typestrs(*e.handler);
      if (!secondary.empty()) {
        std::printf("    also loads: %s\n", join(secondary, "\n                ").c_str());
      }
      if (!e.handler->config().empty()) {
        std::printf("    config: %s\n", e.handler->config().dump().c_str());
      }
    }
    for (const auto& f : failures) {
      std::printf("FAILED %s: %s\n", f.path.c_str(), f.reason.c_str());
    }
  }
  return failures.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ckpt: inspect checkpoints and handler plugins"};
  app.require_subcommand(1);
  std::vector<std::string> plugin_paths;
  app.add_option("--plugin-path", plugin_paths,
                 "Extra plugin folder (repeatable), loaded after "
                 "CKPT_PLUGIN_PATH");
  bool as_json = false;

  auto* plugins = app.add_subcommand(
      "plugins", "List the handler registry in registration order");
  plugins->add_flag("--json", as_json, "Print JSON instead of a table");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  try {
    for (const auto& folder : plugin_paths) ckpt::load_plugin_folder(folder);
    if (*plugins) return run_plugins(as_json);
  } catch (const ckpt::Error& e) {
    std::fprintf(stderr, "ckpt: %s\n", e.what());
    return 1;
  }
  return 2;
}
