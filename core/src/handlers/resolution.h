// Checkpoint-level load resolution with the reason behind a fallback.
#ifndef CKPT_SRC_HANDLERS_RESOLUTION_H_
#define CKPT_SRC_HANDLERS_RESOLUTION_H_

#include <ckpt/handler.h>
#include <ckpt/layout.h>
#include <ckpt/registry.h>
#include <ckpt/value.h>

#include <string>

namespace ckpt::internal {

struct LoadResolution {
  HandlerPtr handler;
  // Set when `handler` is the checkpoint-level fallback (the handler bound
  // to `state`) taken because no handler of the registry claims the
  // typestr recorded for the checkpointable: what a failure of the
  // fallback must say first.
  std::string fallback_reason;
};

// resolve_checkpointable_handler (checkpoint.h), telling why a fallback
// was taken. NoEntryError when there is no handler; its message then
// carries the same reason.
LoadResolution resolve_for_checkpoint(const HandlerRegistry& registry,
                                      const CheckpointInfo& info,
                                      const std::string& name,
                                      const Value* abstract_value);

// The typestr recorded for `name` when no handler of `registry` claims it.
std::optional<std::string> unclaimed_typestr(const HandlerRegistry& registry,
                                             const CheckpointInfo& info,
                                             const std::string& name);

// "checkpointable 'x' was saved by handler 'T', which no loaded plugin
// claims (plugin folders searched: ...)" for an unclaimed typestr.
std::string unclaimed_typestr_reason(const std::string& name,
                                     const std::string& typestr);

}  // namespace ckpt::internal

#endif  // CKPT_SRC_HANDLERS_RESOLUTION_H_
