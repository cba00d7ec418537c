#include "proto_text.h"

#include <ckpt/errors.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/text_format.h>

#include <memory>

namespace ckpt::tool {

std::string proto_text(const ProtoMessage& message) {
  google::protobuf::FileDescriptorSet files;
  if (!files.ParseFromString(message.descriptor_set)) {
    throw DataLossError("the descriptor set of " + message.full_name +
                        " does not parse");
  }
  google::protobuf::DescriptorPool pool;
  for (const auto& file : files.file()) {
    if (!pool.BuildFile(file)) {
      throw DataLossError("cannot build " + file.name() + " for " +
                          message.full_name);
    }
  }
  const google::protobuf::Descriptor* type =
      pool.FindMessageTypeByName(message.full_name);
  if (!type) {
    throw DataLossError("the descriptor set has no type " + message.full_name);
  }
  google::protobuf::DynamicMessageFactory factory(&pool);
  std::unique_ptr<google::protobuf::Message> m(factory.GetPrototype(type)->New());
  if (!m->ParseFromString(message.bytes)) {
    throw DataLossError("the bytes of " + message.full_name + " do not parse");
  }
  std::string text;
  google::protobuf::TextFormat::PrintToString(*m, &text);
  return text;
}

}  // namespace ckpt::tool
