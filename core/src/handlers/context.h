// What the core's engine takes from the current Context.
#ifndef CKPT_SRC_HANDLERS_CONTEXT_H_
#define CKPT_SRC_HANDLERS_CONTEXT_H_

#include <ckpt/context.h>
#include <ckpt/handler.h>

#include <filesystem>
#include <string>

namespace ckpt::internal {

// Where a handler call for checkpointable `name` in `directory` runs, with
// the process and file options of `context`.
CallContext call_context(const Context& context, const std::string& name,
                         const std::filesystem::path& directory);

}  // namespace ckpt::internal

#endif  // CKPT_SRC_HANDLERS_CONTEXT_H_
