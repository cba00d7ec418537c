// The process-wide table of handler types (plugin-provided and built-in),
// by primary typestr, in registration order.
#ifndef CKPT_SRC_HANDLERS_HANDLER_TYPES_H_
#define CKPT_SRC_HANDLERS_HANDLER_TYPES_H_

#include <ckpt/abi.h>
#include <ckpt/handler.h>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace ckpt::internal {

struct HandlerType {
  HandlerInfo info;
  // Makes an instance with a configuration.
  std::function<HandlerPtr(const nlohmann::json& config)> factory;
};

// AlreadyExistsError naming both origins if the typestr is taken.
void add_handler_type(std::shared_ptr<const HandlerType> type);
// Null when unknown.
std::shared_ptr<const HandlerType> find_handler_type(
    const std::string& typestr);
std::vector<std::shared_ptr<const HandlerType>> all_handler_types();

// The factory of a plugin handler type: instances call through `table`.
// `table` is the host's copy of the plugin's struct (see
// register_handler_type).
std::function<HandlerPtr(const nlohmann::json&)> plugin_handler_factory(
    std::shared_ptr<const ckpt_handler_type> table,
    std::shared_ptr<const HandlerInfo> info);

// The built-in StatefulCheckpointable handler type.
std::shared_ptr<const HandlerType> stateful_handler_type();

}  // namespace ckpt::internal

#endif  // CKPT_SRC_HANDLERS_HANDLER_TYPES_H_
