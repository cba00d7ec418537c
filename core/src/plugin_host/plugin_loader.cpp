// Finding, vetting and loading plugin shared objects (Boost.DLL).
#include "plugin_host/plugin_loader.h"

#include <ckpt/errors.h>
#include <ckpt/plugins.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "handlers/handler_types.h"
#include "handlers/registry.h"
#include "plugin_host/host_api.h"
#include "plugin_host/startup.h"
#include "util/logging.h"

namespace fs = std::filesystem;

namespace ckpt {

namespace {

constexpr const char* kPluginPrefix = "ckpt-plugin-";
constexpr const char* kPluginSuffix = ".so";

struct LoadedPlugin {
  PluginInfo info;
  std::vector<ckpt_plugin::Registration> registrations;
};

struct LoaderState {
  std::recursive_mutex mutex;
  std::map<fs::path, LoadedPlugin> by_path;
  std::vector<fs::path> order;
  std::vector<PluginFailure> failures;
  std::vector<fs::path> folders_searched;
  // Every library opened, never closed: handlers, values and static state
  // of a plugin may be referenced until the process ends.
  std::vector<std::unique_ptr<boost::dll::shared_library>> libraries;
};

LoaderState& state() {
  static auto* s = new LoaderState();
  return *s;
}

// A file or folder another user could write to is refused: loading a
// plugin runs its code. Returns the reason, empty when secure.
std::string insecurity(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return path.string() + " cannot be read";
  const bool sticky_dir = S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX);
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !sticky_dir) {
    return path.string() + " is writable by other users";
  }
  if (st.st_uid != ::geteuid() && st.st_uid != 0) {
    return path.string() + " is owned by another user (uid " +
           std::to_string(st.st_uid) + ")";
  }
  return "";
}

// A folder in which users other than its owner may rename or replace
// entries: writable by group or others, without the sticky bit (as /tmp
// has, which lets only an entry's owner rename it).
bool others_can_replace_entries(const struct stat& st) {
  return S_ISDIR(st.st_mode) && (st.st_mode & (S_IWGRP | S_IWOTH)) &&
         !(st.st_mode & S_ISVTX);
}

// Whoever can replace an entry of a folder above `path` can swap `path`
// (or a folder between) for one of their own. Returns why the first such
// folder above `path` (up to /) is insecure, empty when none is. Walks
// both the path as given (made absolute) and the real one, since a
// symbolic link on the way can be swapped through its own folder.
std::string insecure_ancestor(const fs::path& path_as_given) {
  std::error_code ec;
  std::vector<fs::path> paths = {
      fs::absolute(path_as_given, ec).lexically_normal()};
  fs::path real = fs::canonical(path_as_given, ec);
  if (!ec && real != paths[0]) paths.push_back(real);
  for (fs::path path : paths) {
    if (!path.has_filename()) path = path.parent_path();  // "a/b/"
    if (path.empty()) continue;
    for (fs::path above = path.parent_path();; above = above.parent_path()) {
      struct stat st {};
      if (::stat(above.c_str(), &st) != 0) {
        return above.string() + ", a folder above " + path_as_given.string() +
               ", cannot be read";
      }
      if (others_can_replace_entries(st)) {
        return above.string() + ", a folder above " + path_as_given.string() +
               ", is writable by other users without the sticky bit (they "
               "could swap what is below it for their own)";
      }
      if (above == above.parent_path()) break;  // the root
    }
  }
  return "";
}

constexpr const char* kInsecureAdvice =
    "; refusing to load code from it (fix the permissions, or allow insecure "
    "plugin paths explicitly)";

bool is_plugin_file_name(const std::string& name) {
  const std::string prefix = kPluginPrefix, suffix = kPluginSuffix;
  return name.size() > prefix.size() + suffix.size() &&
         name.compare(0, prefix.size(), prefix) == 0 &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void add_registrations(const fs::path& file,
                       const std::vector<ckpt_plugin::Registration>& regs,
                       HandlerRegistry& registry) {
  // Check everything first so that a failing plugin adds nothing.
  std::vector<std::pair<HandlerPtr, std::optional<std::string>>> pending;
  const auto entries = registry.get_all_entries();
  for (const auto& r : regs) {
    std::optional<std::string> name;
    if (!r.checkpointable_name.empty()) name = r.checkpointable_name;
    auto type = internal::find_handler_type(r.typestr);
    if (!type) {
      throw PluginError("plugin " + file.string() +
                        ": registration of unknown handler type '" + r.typestr +
                        "'");
    }
    nlohmann::json config =
        nlohmann::json::parse(r.config_json, nullptr, false);
    if (config.is_discarded() || !config.is_object()) {
      throw PluginError("plugin " + file.string() + ": configuration of " +
                        r.typestr + " is not a JSON object: " + r.config_json);
    }
    for (const auto& e : entries) {
      bool clash = name ? e.checkpointable_name == name
                        : e.handler->typestr() == r.typestr;
      if (clash) {
        throw PluginError("plugin " + file.string() +
                          ": duplicate registration of " + r.typestr +
                          (name ? " for checkpointable '" + *name + "'"
                                : std::string(" (general)")));
      }
    }
    try {
      pending.emplace_back(type->factory(config), name);
    } catch (const Error& e) {
      throw PluginError("plugin " + file.string() + ": " + e.what());
    }
  }
  for (auto& [handler, name] : pending) registry.add(handler, name);
}

// PluginError unless `path` (the real path of `file`) is a regular file
// that only its owner (this user or root) can change, in a folder alike,
// below folders only their owners can change entries of (or insecure files
// allowed).
void vet_plugin_file(const fs::path& file, const fs::path& path,
                     bool allow_insecure) {
  if (!fs::is_regular_file(path)) {
    throw PluginError("plugin " + path.string() + ": not a regular file");
  }
  if (allow_insecure) return;
  for (const fs::path& p : {path.parent_path(), path}) {
    std::string reason = insecurity(p);
    if (!reason.empty()) {
      throw PluginError("plugin " + path.string() + ": " + reason +
                        kInsecureAdvice);
    }
  }
  std::string reason = insecure_ancestor(file);
  if (!reason.empty()) {
    throw PluginError("plugin " + path.string() + ": " + reason +
                      kInsecureAdvice);
  }
}

// Opens the library at `path` (kept open for the life of the process) and
// returns its entry point. REQUIRES: the loader lock.
ckpt_plugin_entry_fn open_library(const fs::path& path) {
  LoaderState& s = state();
  auto* library =
      s.libraries.emplace_back(std::make_unique<boost::dll::shared_library>())
          .get();
  try {
    library->load(path, boost::dll::load_mode::rtld_now |
                            boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    s.libraries.pop_back();
    throw PluginError("plugin " + path.string() +
                      ": not a loadable shared object (" + e.what() + ")");
  }
  if (!library->has(CKPT_PLUGIN_ENTRY_SYMBOL)) {
    throw PluginError(
        "plugin " + path.string() + ": has no entry symbol '" +
        CKPT_PLUGIN_ENTRY_SYMBOL +
        "' (is it built with CKPT_PLUGIN from ckpt/sdk/plugin.h?)");
  }
  return &library->get<ckpt_error*(ckpt_plugin_init_args*)>(
      CKPT_PLUGIN_ENTRY_SYMBOL);
}

// Runs the plugin's entry point, which fills `plugin` with its types and
// registrations. PluginError naming the file on an ABI major mismatch or a
// failing initialisation.
PluginInfo enter_plugin(ckpt_plugin_entry_fn entry, const fs::path& path,
                        ckpt_plugin& plugin) {
  plugin.path = path.string();
  ckpt_plugin_init_args args{};
  args.struct_size = CKPT_PLUGIN_INIT_ARGS_STRUCT_SIZE;
  args.host_abi_major = CKPT_ABI_MAJOR;
  args.host_abi_minor = CKPT_ABI_MINOR;
  args.host = internal::host_api();
  args.plugin = &plugin;
  ckpt_error* error = entry(&args);
  if (args.plugin_abi_major != CKPT_ABI_MAJOR) {
    if (error) delete error;
    throw PluginError("plugin " + path.string() + ": built for ckpt ABI " +
                      std::to_string(args.plugin_abi_major) + "." +
                      std::to_string(args.plugin_abi_minor) +
                      ", this host speaks ABI " +
                      std::to_string(CKPT_ABI_MAJOR) + "." +
                      std::to_string(CKPT_ABI_MINOR) + " (majors must match)");
  }
  if (error) {
    std::string message = error->message;
    delete error;
    throw PluginError("plugin " + path.string() +
                      ": initialisation failed: " + message);
  }
  PluginInfo info;
  info.path = path;
  info.name = args.plugin_name ? args.plugin_name : path.stem().string();
  info.abi_major = args.plugin_abi_major;
  info.abi_minor = args.plugin_abi_minor;
  return info;
}

std::shared_ptr<HandlerInfo> handler_info_of(const ckpt_handler_type& t,
                                             const PluginInfo& plugin) {
  auto info = std::make_shared<HandlerInfo>();
  info->typestr = t.typestr;
  for (size_t i = 0; i < t.num_secondary_typestrs; ++i) {
    if (t.secondary_typestrs[i]) {
      info->secondary_typestrs.push_back(t.secondary_typestrs[i]);
    }
  }
  info->description = t.description ? t.description : "";
  info->origin = plugin.path.string();
  info->plugin_name = plugin.name;
  info->abi_major = plugin.abi_major;
  info->abi_minor = plugin.abi_minor;
  info->load_needs_abstract =
      (t.capabilities & CKPT_CAPABILITY_LOAD_NEEDS_ABSTRACT) != 0;
  for (size_t i = 0; i < t.num_self_checked_files; ++i) {
    info->self_checked_files.push_back(t.self_checked_files[i]);
  }
  for (size_t i = 0; i < t.num_self_checked_prefixes; ++i) {
    info->self_checked_prefixes.push_back(t.self_checked_prefixes[i]);
  }
  return info;
}

// Adds the plugin's handler types to the process-wide table: all, or none
// when one typestr is taken.
void add_handler_types(const ckpt_plugin& plugin, PluginInfo& info) {
  for (const auto& t : plugin.types) {
    if (auto existing = internal::find_handler_type(t->typestr)) {
      throw PluginError("plugin " + plugin.path + ": handler type '" +
                        t->typestr + "' is already registered by " +
                        existing->info.origin);
    }
  }
  for (const auto& t : plugin.types) {
    auto handler_info = handler_info_of(*t, info);
    auto type = std::make_shared<internal::HandlerType>();
    type->info = *handler_info;
    type->factory = internal::plugin_handler_factory(t, handler_info);
    internal::add_handler_type(type);
    info.handler_typestrs.push_back(t->typestr);
  }
}

PluginInfo load_locked(const fs::path& file, bool allow_insecure,
                       HandlerRegistry& registry, bool is_global) {
  LoaderState& s = state();
  std::error_code ec;
  fs::path path = fs::canonical(file, ec);
  if (ec) {
    throw PluginError("plugin " + file.string() + ": " + ec.message());
  }
  if (auto it = s.by_path.find(path); it != s.by_path.end()) {
    // Already loaded: a non-global registry still gets its registrations.
    if (!is_global) add_registrations(path, it->second.registrations, registry);
    return it->second.info;
  }
  vet_plugin_file(file, path, allow_insecure);
  ckpt_plugin plugin;
  PluginInfo info = enter_plugin(open_library(path), path, plugin);
  add_handler_types(plugin, info);
  s.by_path[path] = LoadedPlugin{info, plugin.registrations};
  s.order.push_back(path);
  add_registrations(path, plugin.registrations, registry);
  internal::log(CKPT_LOG_DEBUG, "loaded plugin " + path.string());
  return info;
}

std::vector<PluginInfo> load_folder_locked(const fs::path& folder,
                                           bool allow_insecure,
                                           HandlerRegistry& registry,
                                           bool is_global) {
  std::vector<PluginInfo> out;
  LoaderState& s = state();
  if (std::find(s.folders_searched.begin(), s.folders_searched.end(), folder) ==
      s.folders_searched.end()) {
    s.folders_searched.push_back(folder);
  }
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) {
    s.failures.push_back({folder, "not a folder"});
    internal::log(CKPT_LOG_WARNING,
                  "plugin folder " + folder.string() + " is not a folder");
    return out;
  }
  if (!allow_insecure) {
    std::string reason = insecurity(folder);
    if (reason.empty()) {
      reason = insecure_ancestor(folder);
      if (!reason.empty()) reason = folder.string() + ": " + reason;
    }
    if (!reason.empty()) {
      std::string message = "plugin folder " + reason + kInsecureAdvice;
      s.failures.push_back({folder, message});
      internal::log(CKPT_LOG_WARNING, message);
      return out;
    }
  }
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    if (is_plugin_file_name(entry.path().filename().string())) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& file : files) {
    try {
      out.push_back(load_locked(file, allow_insecure, registry, is_global));
    } catch (const Error& e) {
      s.failures.push_back({file, e.what()});
      internal::log(CKPT_LOG_WARNING, e.what());
    }
  }
  return out;
}

}  // namespace

fs::path builtin_plugin_folder() {
  if (const char* dir = std::getenv("CKPT_BUILTIN_PLUGIN_DIR")) return dir;
  fs::path here = boost::dll::this_line_location().parent_path();
#ifdef CKPT_BUILD_ROOT
  // Uninstalled: libckpt.so in build/core, or a test that links the core
  // statically, anywhere in the build tree, uses the plugins built beside.
  std::error_code ec;
  const fs::path root = fs::weakly_canonical(CKPT_BUILD_ROOT, ec);
  const fs::path binary = fs::weakly_canonical(here, ec);
  if (!ec &&
      std::mismatch(root.begin(), root.end(), binary.begin(), binary.end())
              .first == root.end()) {
    return CKPT_BUILD_PLUGIN_DIR;
  }
#endif
  return here / "ckpt" / "plugins";
}

void internal::load_default_plugins(Registry& global) {
  LoaderState& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  fs::path builtin = builtin_plugin_folder();
  s.folders_searched.push_back(builtin);
  std::error_code ec;
  if (fs::is_directory(builtin, ec)) {
    load_folder_locked(builtin, false, global, true);
  } else {
    internal::log(CKPT_LOG_WARNING,
                  "built-in plugin folder " + builtin.string() +
                      " does not exist; only the core's handlers are there");
  }
  if (const char* env = std::getenv("CKPT_PLUGIN_PATH")) {
    std::stringstream paths(env);
    std::string folder;
    while (std::getline(paths, folder, ':')) {
      if (!folder.empty()) load_folder_locked(folder, false, global, true);
    }
  }
}

namespace {

// Runs `load(target registry, is_global)` under the loader lock, after the
// default plugins (so that explicit loads come after them).
template <class F>
auto with_loader(HandlerRegistry* registry, F load) {
  internal::start_up();
  std::lock_guard<std::recursive_mutex> lock(state().mutex);
  Registry& global = internal::global_registry_data();
  HandlerRegistry& target = registry ? *registry : global;
  return load(target, &target == &global);
}

}  // namespace

PluginInfo load_plugin(const fs::path& file, bool allow_insecure,
                       HandlerRegistry* registry) {
  return with_loader(registry, [&](HandlerRegistry& target, bool is_global) {
    return load_locked(file, allow_insecure, target, is_global);
  });
}

std::vector<PluginInfo> load_plugin_folder(const fs::path& folder,
                                           bool allow_insecure,
                                           HandlerRegistry* registry) {
  return with_loader(registry, [&](HandlerRegistry& target, bool is_global) {
    return load_folder_locked(folder, allow_insecure, target, is_global);
  });
}

std::vector<PluginInfo> loaded_plugins() {
  internal::start_up();
  LoaderState& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  std::vector<PluginInfo> out;
  for (const fs::path& p : s.order) out.push_back(s.by_path.at(p).info);
  return out;
}

std::vector<PluginFailure> plugin_failures() {
  internal::start_up();
  LoaderState& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  return s.failures;
}

std::string searched_plugin_folders_text() {
  std::string text;
  for (const fs::path& folder : searched_plugin_folders()) {
    text += (text.empty() ? "" : ", ") + folder.string();
  }
  return text.empty() ? "none" : text;
}

std::vector<fs::path> searched_plugin_folders() {
  internal::start_up();
  LoaderState& s = state();
  std::lock_guard<std::recursive_mutex> lock(s.mutex);
  return s.folders_searched;
}

}  // namespace ckpt
