// Checkpointables the tool cannot load by itself.
#ifndef CKPT_TOOLS_CKPT_HOST_TYPES_H_
#define CKPT_TOOLS_CKPT_HOST_TYPES_H_

#include <ckpt/checkpoint.h>
#include <ckpt/errors.h>

#include <string>

namespace ckpt::tool {

// Why `name` can only be loaded by the host app (its handler needs the
// host's object or message type as the abstract checkpointable), or empty
// (also when no handler resolves: loading it then reports why).
inline std::string needs_host_type(const CheckpointInfo& info,
                                   const std::string& name) {
  std::string typestr;
  try {
    typestr = resolve_checkpointable_handler(info, name)->typestr();
  } catch (const Error&) {
    return "";
  }
  if (typestr == "ckpt.StatefulCheckpointableHandler") {
    return "stateful: only the host object that saved it can load it";
  }
  if (typestr == "ckpt.proto.ProtoHandler") {
    return "protobuf: loading needs the message type, which only the host app "
           "has";
  }
  return "";
}

}  // namespace ckpt::tool

#endif  // CKPT_TOOLS_CKPT_HOST_TYPES_H_
