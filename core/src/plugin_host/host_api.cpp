#include "plugin_host/host_api.h"

#include <algorithm>
#include <cstring>
#include <exception>

#include "util/async_engine.h"
#include "util/error_conversion.h"
#include "util/logging.h"

namespace ckpt::internal {

namespace {

ckpt_error* error_new(ckpt_error_code code, const char* message) {
  return new ckpt_error{code, message ? message : ""};
}
ckpt_error_code error_code(const ckpt_error* error) {
  return error ? error->code : CKPT_ERROR_INTERNAL;
}
const char* error_message(const ckpt_error* error) {
  return error ? error->message.c_str() : "";
}
void error_free(ckpt_error* error) { delete error; }

void host_log(ckpt_log_level level, const char* message) {
  log(level, message ? message : "");
}

ckpt_error* register_handler_type(ckpt_plugin* plugin,
                                  const ckpt_handler_type* type) {
  if (!plugin) return error_new(CKPT_ERROR_INVALID_ARGUMENT, "no plugin");
  if (!type || type->struct_size < CKPT_HANDLER_TYPE_STRUCT_SIZE_1_0) {
    return error_new(CKPT_ERROR_INVALID_ARGUMENT,
                     "handler type is smaller than ABI 1.0's ckpt_handler_type "
                     "(is struct_size set?)");
  }
  // Read the plugin's struct only up to its struct_size (abi.h convention
  // 2); later fields stay zero.
  auto copy = std::make_shared<ckpt_handler_type>();
  std::memcpy(copy.get(), type,
              std::min<size_t>(type->struct_size, sizeof(ckpt_handler_type)));
  copy->struct_size = sizeof(ckpt_handler_type);
  type = copy.get();
  if (!type->typestr || !*type->typestr || !type->create_instance ||
      !type->destroy_instance || !type->is_handleable ||
      !type->is_abstract_handleable || !type->save || !type->load) {
    return error_new(CKPT_ERROR_INVALID_ARGUMENT,
                     "handler type is incomplete (needs a typestr and every "
                     "function but metadata)");
  }
  for (const auto& [names, count] :
       {std::pair(type->self_checked_files, type->num_self_checked_files),
        std::pair(type->self_checked_prefixes,
                  type->num_self_checked_prefixes)}) {
    if (count > 0 && !names) {
      return error_new(CKPT_ERROR_INVALID_ARGUMENT,
                       "handler type lists self-checked files but gives none");
    }
    for (size_t i = 0; i < count; ++i) {
      const char* name = names[i];
      if (!name || !*name || std::strchr(name, '/') ||
          std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) {
        return error_new(CKPT_ERROR_INVALID_ARGUMENT,
                         "a self-checked file (or prefix) of a handler type "
                         "must be a plain file name");
      }
    }
  }
  for (const auto& t : plugin->types) {
    if (std::strcmp(t->typestr, type->typestr) == 0) {
      return error_new(
          CKPT_ERROR_ALREADY_EXISTS,
          (std::string("handler type '") + type->typestr + "' registered twice")
              .c_str());
    }
  }
  plugin->types.push_back(std::move(copy));
  return nullptr;
}

ckpt_error* add_registration(ckpt_plugin* plugin,
                             const ckpt_registration* registration) {
  if (!plugin || !registration ||
      registration->struct_size < CKPT_REGISTRATION_STRUCT_SIZE ||
      !registration->typestr) {
    return error_new(CKPT_ERROR_INVALID_ARGUMENT,
                     "registration without typestr");
  }
  plugin->registrations.push_back(
      {registration->typestr,
       registration->checkpointable_name ? registration->checkpointable_name
                                         : "",
       registration->config_json ? registration->config_json : "{}"});
  return nullptr;
}

ckpt_value_ref* value_retain(ckpt_value_ref* ref) {
  return ref ? new ckpt_value_ref{ref->view} : nullptr;
}
void value_release(ckpt_value_ref* ref) { delete ref; }

// Never throws across the ABI: when the pool cannot take the work (no
// memory), it runs here.
void submit(void (*fn)(void*), void* data) {
  try {
    post_background([fn, data] { fn(data); });
  } catch (...) {
    fn(data);
  }
}

// Both completions are functions of the C ABI: nothing may escape them,
// and the waiting side must always get a result.
void complete_save(ckpt_completion* completion, ckpt_error* error) {
  if (!completion) {
    delete error;
    return;
  }
  std::unique_ptr<ckpt_completion> owned(completion);
  try {
    if (error) {
      completion->saved.set_exception(
          c_error_to_exception(error, completion->what));
    } else {
      completion->saved.set_value();
    }
  } catch (...) {
    completion->saved.set_exception(
        current_exception_as_error(completion->what));
  }
}

void complete_load(ckpt_completion* completion, ckpt_owned_value owned,
                   ckpt_error* error) {
  // Whatever happens, the plugin's deleter runs exactly once.
  std::shared_ptr<void> keepalive;
  if (owned.deleter) {
    keepalive = std::shared_ptr<void>(
        owned.deleter_ctx,
        [deleter = owned.deleter](void* ctx) { deleter(ctx); });
  }
  if (!completion) {
    delete error;
    return;
  }
  std::unique_ptr<ckpt_completion> owner(completion);
  try {
    if (error) {
      completion->loaded.set_exception(
          c_error_to_exception(error, completion->what));
    } else if (!owned.value) {
      completion->loaded.set_value(Value());
    } else {
      completion->loaded.set_value(from_c_value(*owned.value, keepalive));
    }
  } catch (...) {
    // A malformed value (or no memory to convert it) fails the load.
    std::exception_ptr e = current_exception_as_error(completion->what);
    try {
      std::rethrow_exception(e);
    } catch (const Error& converted) {
      completion->loaded.set_exception(
          std::make_exception_ptr(PluginError(converted.what())));
    }
  }
}

const ckpt_host_api kHostApi = {
    CKPT_HOST_API_STRUCT_SIZE,
    error_new,
    error_code,
    error_message,
    error_free,
    host_log,
    register_handler_type,
    add_registration,
    value_retain,
    value_release,
    submit,
    complete_save,
    complete_load,
};

}  // namespace

const ckpt_host_api* host_api() { return &kHostApi; }

std::exception_ptr c_error_to_exception(ckpt_error* error,
                                        const std::string& prefix) {
  try {
    throw_c_error(error, prefix);
  } catch (...) {
    return std::current_exception();
  }
}

void throw_c_error(ckpt_error* error, const std::string& prefix) {
  ErrorKind kind = error_kind_from_code(error->code);
  std::string message =
      prefix.empty() ? error->message : prefix + ": " + error->message;
  delete error;
  throw_error(kind, message);
}

}  // namespace ckpt::internal
