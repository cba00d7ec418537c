// Checkpointables the tool cannot load by itself.
#ifndef CKPT_TOOLS_CKPT_HOST_TYPES_H_
#define CKPT_TOOLS_CKPT_HOST_TYPES_H_

#include <ckpt/checkpoint.h>
#include <ckpt/errors.h>
#include <ckpt/plugins.h>

#include <string>

namespace ckpt::tool {

// Why `name` can only be loaded by the host app (its handler needs the
// host's object or message type as the abstract checkpointable), or empty
// (also when no handler resolves: loading it then reports why).
inline std::string needs_host_type(const CheckpointInfo& info,
                                   const std::string& name) {
  HandlerPtr handler;
  try {
    handler = resolve_checkpointable_handler(info, name);
  } catch (const Error&) {
    return "";
  }
  if (handler->info().load_needs_abstract) {
    return "its handler " + handler->typestr() +
           " loads only into an abstract checkpointable that the host app "
           "gives (a message type, an object to fill)";
  }
  return "";
}

// "no plugin for T (plugin folders searched: ...)": a checkpointable whose
// recorded handler no loaded plugin claims.
inline std::string no_plugin_text(const std::string& typestr) {
  return "no plugin for " + typestr +
         " (plugin folders searched: " + searched_plugin_folders_text() +
         "; add its folder with --plugin-path)";
}

}  // namespace ckpt::tool

#endif  // CKPT_TOOLS_CKPT_HOST_TYPES_H_
