// The host side of the C ABI: the ckpt_host_api table handed to plugins and
// the host-owned objects behind its opaque types.
#ifndef CKPT_SRC_PLUGIN_HOST_HOST_API_H_
#define CKPT_SRC_PLUGIN_HOST_HOST_API_H_

#include <ckpt/abi.h>
#include <ckpt/errors.h>
#include <ckpt/value.h>

#include <future>
#include <memory>
#include <string>
#include <vector>

#include "value/value_bridge.h"

struct ckpt_error {
  ckpt_error_code code;
  std::string message;
};

struct ckpt_value_ref {
  std::shared_ptr<const ckpt::internal::CValueView> view;
};

// One per save or load call into a plugin; deleted when signalled.
struct ckpt_completion {
  std::promise<void> saved;
  std::promise<ckpt::Value> loaded;
  std::string what;  // prefix of error messages, names handler and plugin
};

// What a plugin registers while its entry point runs.
struct ckpt_plugin {
  struct Registration {
    std::string typestr;
    std::string checkpointable_name;  // empty: general
    std::string config_json;
  };
  std::string path;
  // The plugin's types, copied into this host's layout: fields the plugin
  // does not know (past its struct_size) read as zero.
  std::vector<std::shared_ptr<const ckpt_handler_type>> types;
  std::vector<Registration> registrations;
};

namespace ckpt::internal {

const ckpt_host_api* host_api();

// Throws the ckpt::Error matching `error` with "<prefix>: <message>" and
// frees `error`. Requires error != NULL.
[[noreturn]] void throw_c_error(ckpt_error* error, const std::string& prefix);

// The exception_ptr equivalent, for futures.
std::exception_ptr c_error_to_exception(ckpt_error* error,
                                        const std::string& prefix);

}  // namespace ckpt::internal

#endif  // CKPT_SRC_PLUGIN_HOST_HOST_API_H_
