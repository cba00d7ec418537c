// ckpt/plugins.h -- finding and loading handler plugins.
//
// A plugin is a shared object exporting `ckpt_plugin_entry` (sdk/abi.h).
// Search order, each adding to the global registry in load order (so a
// later plugin wins LIFO ties):
//   1. the built-in plugin folder (the shipped plugins);
//   2. each folder of CKPT_PLUGIN_PATH (colon-separated);
//   3. folders given in a Context (their registrations go to that
//      Context's registry);
//   4. explicit load_plugin() calls.
// In a folder, only files named ckpt-plugin-*.so are opened, in sorted name
// order. Loading is code execution: a folder or file writable by another
// user (group- or world-writable, or owned by another non-root user) is
// refused unless allow_insecure is set. A plugin that fails to load is
// recorded in plugin_failures() (and logged) and the host goes on.
#ifndef CKPT_PLUGINS_H_
#define CKPT_PLUGINS_H_

#include <ckpt/export.h>
#include <ckpt/registry.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ckpt {

struct CKPT_API PluginInfo {
  std::filesystem::path path;
  std::string name;
  uint32_t abi_major = 0;
  uint32_t abi_minor = 0;
  std::vector<std::string> handler_typestrs;
};

struct CKPT_API PluginFailure {
  std::filesystem::path path;
  std::string reason;
};

// Loads one plugin file (any file name) and adds its default registrations
// to `registry` (the global registry when null). Loading the same file
// twice is a no-op that returns its info. Throws PluginError naming the
// file: not a shared object, no entry symbol, ABI major mismatch, failing
// initialisation, a typestr another plugin already registered, an insecure
// file.
CKPT_API PluginInfo load_plugin(const std::filesystem::path& file,
                                bool allow_insecure = false,
                                HandlerRegistry* registry = nullptr);

// Loads every ckpt-plugin-*.so of `folder` in name order into `registry`
// (global when null); failures are recorded, not thrown.
CKPT_API std::vector<PluginInfo> load_plugin_folder(
    const std::filesystem::path& folder, bool allow_insecure = false,
    HandlerRegistry* registry = nullptr);

// The core's start-up: loads the built-in folder and CKPT_PLUGIN_PATH once
// per process. Every public call of the core does this first, so a host
// calls it only to load plugins at a moment of its choosing.
CKPT_API void ensure_default_plugins_loaded();

// The folder of the shipped plugins this libckpt uses.
CKPT_API std::filesystem::path builtin_plugin_folder();

CKPT_API std::vector<PluginInfo> loaded_plugins();
CKPT_API std::vector<PluginFailure> plugin_failures();
// Every folder searched for plugins in this process (built-in,
// CKPT_PLUGIN_PATH, Contexts' plugin_paths, load_plugin_folder), in the
// order first searched.
CKPT_API std::vector<std::filesystem::path> searched_plugin_folders();
// The same as text for messages: "a, b" (or "none").
CKPT_API std::string searched_plugin_folders_text();

}  // namespace ckpt

#endif  // CKPT_PLUGINS_H_
