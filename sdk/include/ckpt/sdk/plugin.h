// ckpt/sdk/plugin.h -- exporting sdk::Handler classes as a ckpt plugin.
//
//   #include <ckpt/sdk/plugin.h>
//
//   class VocabHandler : public ckpt::sdk::Handler { ... };
//
//   CKPT_PLUGIN("vocab", registrar) {
//     registrar.handler_type<VocabHandler>(
//         "mycompany.VocabHandler", {"mycompany.OldVocabHandler"},
//         "tokenizer vocabularies as vocab.txt");
//     registrar.registration("mycompany.VocabHandler");            // general
//     registrar.registration("mycompany.VocabHandler", "vocab");   // by name
//   }
//
// Build the file as a shared module named ckpt-plugin-<name>.so with hidden
// visibility (-fvisibility=hidden); only ckpt_plugin_entry is exported. The
// SDK is header-only: a plugin never links libckpt.
#ifndef CKPT_SDK_PLUGIN_H_
#define CKPT_SDK_PLUGIN_H_

#include <ckpt/abi.h>
#include <ckpt/sdk/error.h>
#include <ckpt/sdk/handler.h>
#include <ckpt/sdk/value.h>

#include <deque>
#include <exception>
#include <initializer_list>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

namespace ckpt::sdk {

namespace detail {

// An error of code `code` for this host: codes newer than the host's minor
// become CKPT_ERROR_INTERNAL, with the message unchanged (convention 10).
inline ckpt_error* new_error(ckpt_error_code code, const std::string& message) {
  if (host_abi_minor() < 1 && code > CKPT_ERROR_UNIMPLEMENTED) {
    code = CKPT_ERROR_INTERNAL;
  }
  return host().error_new(code, message.c_str());
}

// Converts the exception in flight into an ABI error. Call only in catch.
// sdk::Error keeps its code; an OS error (std::system_error, which
// std::filesystem throws) gets the code of its errno.
inline ckpt_error* current_exception_to_error(const char* what_failed) {
  try {
    throw;
  } catch (const Error& e) {
    return new_error(e.code(), e.what());
  } catch (const std::system_error& e) {
    const bool is_errno = e.code().category() == std::generic_category() ||
                          e.code().category() == std::system_category();
    return new_error(
        is_errno ? error_code_from_errno(e.code().value()) : CKPT_ERROR_PLUGIN,
        std::string(what_failed) + ": " + e.what());
  } catch (const std::bad_alloc&) {
    return new_error(CKPT_ERROR_INTERNAL,
                     std::string(what_failed) + ": out of memory");
  } catch (const std::exception& e) {
    return new_error(CKPT_ERROR_PLUGIN,
                     std::string(what_failed) + ": " + e.what());
  } catch (...) {
    return new_error(CKPT_ERROR_PLUGIN,
                     std::string(what_failed) + ": unknown exception");
  }
}

struct SaveTask {
  SaveWork work;
  ckpt_completion* completion;
};
struct LoadTask {
  LoadWork work;
  ckpt_completion* completion;
};

inline void run_save_task(void* data) {
  std::unique_ptr<SaveTask> task(static_cast<SaveTask*>(data));
  ckpt_error* error = nullptr;
  try {
    task->work();
  } catch (...) {
    error = current_exception_to_error("background save failed");
  }
  task->work = nullptr;  // release what the work held before signalling
  host().complete_save(task->completion, error);
}

inline void run_load_task(void* data) {
  std::unique_ptr<LoadTask> task(static_cast<LoadTask*>(data));
  ckpt_error* error = nullptr;
  ckpt_owned_value value{};
  value.struct_size = CKPT_OWNED_VALUE_STRUCT_SIZE;
  try {
    value = freeze(task->work());
  } catch (...) {
    error = current_exception_to_error("background load failed");
  }
  task->work = nullptr;
  host().complete_load(task->completion, value, error);
}

// The C functions of a ckpt_handler_type for handler class H.
template <class H>
struct TypeGlue {
  static ckpt_error* create_instance(void*, const char* config_json,
                                     void** out) {
    try {
      *out = static_cast<Handler*>(
          new H(std::string(config_json ? config_json : "{}")));
      return nullptr;
    } catch (...) {
      return current_exception_to_error("creating the handler failed");
    }
  }
  static void destroy_instance(void* instance) {
    delete static_cast<Handler*>(instance);
  }
  static int is_handleable(void* instance, const ckpt_value* value) {
    try {
      return value && static_cast<Handler*>(instance)->is_handleable(*value);
    } catch (...) {
      return 0;
    }
  }
  static ckpt_answer is_abstract_handleable(void* instance,
                                            const ckpt_value* abstract_value) {
    try {
      if (!abstract_value) return CKPT_ANSWER_NO;
      return static_cast<Handler*>(instance)->is_abstract_handleable(
          *abstract_value);
    } catch (...) {
      return CKPT_ANSWER_NO;
    }
  }
  static ckpt_error* save(void* instance, const ckpt_save_args* args) {
    std::unique_ptr<SaveTask> task;
    try {
      SaveWork work = static_cast<Handler*>(instance)->save(
          Call::from(*args->context), *args->value,
          RetainedValue(args->value_ref));
      if (work) task.reset(new SaveTask{std::move(work), args->completion});
    } catch (...) {
      return current_exception_to_error("save failed");
    }
    // Nothing below throws: the completion now belongs to the task.
    if (!task) {
      host().complete_save(args->completion, nullptr);
    } else {
      host().submit(run_save_task, task.release());
    }
    return nullptr;
  }
  static ckpt_error* load(void* instance, const ckpt_load_args* args) {
    std::unique_ptr<LoadTask> task;
    try {
      LoadWork work = static_cast<Handler*>(instance)->load(
          Call::from(*args->context), args->abstract_value,
          RetainedValue(args->abstract_ref));
      if (!work) throw Error(CKPT_ERROR_INTERNAL, "load returned no work");
      task.reset(new LoadTask{std::move(work), args->completion});
    } catch (...) {
      return current_exception_to_error("load failed");
    }
    host().submit(run_load_task, task.release());
    return nullptr;
  }
  static ckpt_error* metadata(void* instance, const ckpt_metadata_args* args) {
    try {
      *args->result = freeze(static_cast<Handler*>(instance)->metadata(
          Call::from(*args->context)));
      return nullptr;
    } catch (...) {
      return current_exception_to_error("metadata failed");
    }
  }
  static ckpt_error* finalize_save(void* instance,
                                   const ckpt_finalize_args* args) {
    try {
      static_cast<Handler*>(instance)->finalize_save(
          Call::from(*args->context));
      return nullptr;
    } catch (...) {
      return current_exception_to_error("finalizing the save failed");
    }
  }
};

}  // namespace detail

// Logs through the host's logger.
inline void log(ckpt_log_level level, const std::string& message) {
  host().log(level, message.c_str());
}

// Handed to the CKPT_PLUGIN body; registers handler types and the default
// registry entries of this plugin. Errors thrown here fail the plugin's load
// as a whole, with the message naming the plugin file.
class Registrar {
 public:
  explicit Registrar(ckpt_plugin* plugin) : plugin_(plugin) {}

  // Registers handler class H under `typestr`. `capabilities`:
  // CKPT_CAPABILITY_* bits (e.g. CKPT_CAPABILITY_LOAD_NEEDS_ABSTRACT).
  // `self_checked_files`: plain names of files in its folder whose bytes
  // the handler checks itself on every load (ckpt_handler_type, 1.2);
  // `self_checked_prefixes`: likewise every file whose name starts with one
  // of these (1.3).
  template <class H>
  void handler_type(
      const std::string& typestr,
      std::initializer_list<std::string> secondary_typestrs = {},
      const std::string& description = "", uint64_t capabilities = 0,
      std::initializer_list<std::string> self_checked_files = {},
      std::initializer_list<std::string> self_checked_prefixes = {}) {
    Storage& s = storage();
    ckpt_handler_type& type = s.types.emplace_back();
    type = ckpt_handler_type{};
    type.struct_size = CKPT_HANDLER_TYPE_STRUCT_SIZE;
    type.capabilities = capabilities;
    auto& checked = s.string_lists.emplace_back();
    for (const std::string& f : self_checked_files)
      checked.push_back(s.keep(f));
    type.self_checked_files = checked.empty() ? nullptr : checked.data();
    type.num_self_checked_files = checked.size();
    auto& prefixes = s.string_lists.emplace_back();
    for (const std::string& p : self_checked_prefixes)
      prefixes.push_back(s.keep(p));
    type.self_checked_prefixes = prefixes.empty() ? nullptr : prefixes.data();
    type.num_self_checked_prefixes = prefixes.size();
    type.typestr = s.keep(typestr);
    auto& secondaries = s.string_lists.emplace_back();
    for (const std::string& t : secondary_typestrs) {
      secondaries.push_back(s.keep(t));
    }
    type.secondary_typestrs = secondaries.data();
    type.num_secondary_typestrs = secondaries.size();
    type.description = s.keep(description);
    type.create_instance = &detail::TypeGlue<H>::create_instance;
    type.destroy_instance = &detail::TypeGlue<H>::destroy_instance;
    type.is_handleable = &detail::TypeGlue<H>::is_handleable;
    type.is_abstract_handleable = &detail::TypeGlue<H>::is_abstract_handleable;
    type.save = &detail::TypeGlue<H>::save;
    type.load = &detail::TypeGlue<H>::load;
    type.metadata = &detail::TypeGlue<H>::metadata;
    type.finalize_save = &detail::TypeGlue<H>::finalize_save;
    check(host().register_handler_type(plugin_, &type));
  }

  // A default registry entry: `typestr` general (empty name) or scoped to
  // `checkpointable_name`, with an instance configuration.
  void registration(const std::string& typestr,
                    const std::string& checkpointable_name = "",
                    const std::string& config_json = "{}") {
    ckpt_registration r{};
    r.struct_size = CKPT_REGISTRATION_STRUCT_SIZE;
    r.typestr = typestr.c_str();
    r.checkpointable_name =
        checkpointable_name.empty() ? nullptr : checkpointable_name.c_str();
    r.config_json = config_json.c_str();
    check(host().add_registration(plugin_, &r));
  }

 private:
  // Strings and tables the host keeps pointers to: never freed (plugins are
  // never unloaded).
  struct Storage {
    std::deque<std::string> strings;
    std::deque<std::vector<const char*>> string_lists;
    std::deque<ckpt_handler_type> types;
    const char* keep(const std::string& s) {
      return strings.emplace_back(s).c_str();
    }
  };
  static Storage& storage() {
    static Storage* s = new Storage();
    return *s;
  }
  static void check(ckpt_error* error) {
    if (!error) return;
    std::string message = host().error_message(error);
    ckpt_error_code code = host().error_code(error);
    host().error_free(error);
    throw Error(code, message);
  }

  ckpt_plugin* plugin_;
};

namespace detail {

inline ckpt_error* enter(ckpt_plugin_init_args* args, const char* name,
                         void (*body)(Registrar&)) {
  args->plugin_abi_major = CKPT_ABI_MAJOR;
  args->plugin_abi_minor = CKPT_ABI_MINOR;
  args->plugin_name = name;
  if (args->host_abi_major != CKPT_ABI_MAJOR) {
    // The host's table may not even have error_new where we expect it; the
    // host reads our version fields and reports the mismatch itself.
    return nullptr;
  }
  host_slot() = args->host;
  host_minor_slot() = args->host_abi_minor;
  try {
    Registrar registrar(args->plugin);
    body(registrar);
    return nullptr;
  } catch (...) {
    return current_exception_to_error("plugin initialisation failed");
  }
}

}  // namespace detail
}  // namespace ckpt::sdk

// Defines the plugin's exported entry point. `name` is a short static
// string; the block that follows receives `registrar`.
#define CKPT_PLUGIN(name, registrar)                                   \
  static void ckpt_plugin_body_(::ckpt::sdk::Registrar& registrar);    \
  extern "C" CKPT_EXPORT ckpt_error* ckpt_plugin_entry(                \
      ckpt_plugin_init_args* args) {                                   \
    return ::ckpt::sdk::detail::enter(args, name, &ckpt_plugin_body_); \
  }                                                                    \
  static void ckpt_plugin_body_(::ckpt::sdk::Registrar& registrar)

#endif  // CKPT_SDK_PLUGIN_H_
