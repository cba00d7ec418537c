// Protobuf text format of a message that crossed the C ABI (type name,
// wire bytes, descriptor set), with no generated code.
#ifndef CKPT_TOOLS_CKPT_PROTO_TEXT_H_
#define CKPT_TOOLS_CKPT_PROTO_TEXT_H_

#include <ckpt/value.h>

#include <string>

namespace ckpt::tool {

// DataLossError when the descriptors or bytes do not parse.
std::string proto_text(const ProtoMessage& message);

}  // namespace ckpt::tool

#endif  // CKPT_TOOLS_CKPT_PROTO_TEXT_H_
