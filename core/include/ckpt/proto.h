// ckpt/proto.h -- protobuf messages as ckpt values, for host apps.
//
//   ckpt::Value v = ckpt::proto_value(run_config);         // save
//   ckpt::Value t = ckpt::proto_type<my::RunConfig>();     // load target
//   my::RunConfig loaded;
//   ckpt::from_proto_value(result, &loaded);
//
// Header-only: libckpt never links protobuf, the host app does. A message
// crosses the C ABI as its full type name, its wire bytes and a serialized
// FileDescriptorSet (the message's file and every file it imports,
// dependencies first), never as a Message*: handler plugins rebuild the type
// from the descriptor set, so no plugin needs the host's generated code.
//
// Every function throws ckpt::Error kinds on bad input; none of them makes
// protobuf log or abort.
#ifndef CKPT_PROTO_H_
#define CKPT_PROTO_H_

#include <ckpt/errors.h>
#include <ckpt/value.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/message.h>

#include <set>
#include <string>

namespace ckpt {

namespace proto_internal {

// Appends `file` to `out` after the files it imports (each file once).
inline void add_file_and_dependencies(
    const google::protobuf::FileDescriptor* file, std::set<std::string>& seen,
    google::protobuf::FileDescriptorSet& out) {
  if (!seen.insert(file->name()).second) return;
  for (int i = 0; i < file->dependency_count(); ++i) {
    add_file_and_dependencies(file->dependency(i), seen, out);
  }
  file->CopyTo(out.add_file());
}

// The serialized FileDescriptorSet that defines `type`.
inline std::string descriptor_set_of(const google::protobuf::Descriptor& type) {
  google::protobuf::FileDescriptorSet set;
  std::set<std::string> seen;
  add_file_and_dependencies(type.file(), seen, set);
  return set.SerializeAsString();
}

}  // namespace proto_internal

// The wire bytes of `message`, serialized deterministically (map entries in
// key order), so equal messages give equal bytes. Throws
// InvalidArgumentError when a proto2 required field is missing.
inline std::string serialize_deterministically(
    const google::protobuf::Message& message) {
  if (!message.IsInitialized()) {
    throw InvalidArgumentError(
        "protobuf message " + message.GetDescriptor()->full_name() +
        " is missing required fields: " + message.InitializationErrorString());
  }
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    if (!message.SerializePartialToCodedStream(&coded)) {
      throw InvalidArgumentError("protobuf message " +
                                 message.GetDescriptor()->full_name() +
                                 " cannot be serialized (over 2 GiB?)");
    }
  }
  return bytes;
}

// `message` in the form that crosses the C ABI.
inline ProtoMessage to_proto_message(const google::protobuf::Message& message) {
  ProtoMessage out;
  out.full_name = message.GetDescriptor()->full_name();
  out.bytes = serialize_deterministically(message);
  out.descriptor_set =
      proto_internal::descriptor_set_of(*message.GetDescriptor());
  return out;
}

// A checkpointable holding a copy of `message`.
inline Value proto_value(const google::protobuf::Message& message) {
  return Value::proto(to_proto_message(message));
}

// An abstract checkpointable: "load as a message of `type`".
inline Value proto_type(const google::protobuf::Descriptor* type) {
  if (type == nullptr) {
    throw InvalidArgumentError("proto_type: the message descriptor is null");
  }
  ProtoMessage out;
  out.full_name = type->full_name();
  out.descriptor_set = proto_internal::descriptor_set_of(*type);
  return Value::proto_type(std::move(out));
}

// The type of `prototype` (its contents are ignored).
inline Value proto_type(const google::protobuf::Message& prototype) {
  return proto_type(prototype.GetDescriptor());
}

template <class MessageT>
Value proto_type() {
  return proto_type(MessageT::descriptor());
}

// Fills `out` from a loaded protobuf value. InvalidArgumentError when `value`
// is not a message or is a message of another type than `out`'s;
// DataLossError when its bytes do not parse as that type.
inline void from_proto_value(const Value& value,
                             google::protobuf::Message* out) {
  if (out == nullptr) {
    throw InvalidArgumentError("from_proto_value: the output message is null");
  }
  const std::string& wanted = out->GetDescriptor()->full_name();
  if (value.kind() != Value::Kind::kProto) {
    throw InvalidArgumentError("expected a protobuf message " + wanted +
                               ", got " + describe(value));
  }
  const ProtoMessage& message = value.as_proto();
  if (message.full_name != wanted) {
    throw InvalidArgumentError("expected a protobuf message " + wanted +
                               ", got a " + message.full_name);
  }
  // The partial parse never logs; missing required fields are reported here.
  if (!out->ParsePartialFromString(message.bytes)) {
    throw DataLossError("the bytes of a protobuf message " + wanted +
                        " do not parse as that type");
  }
  if (!out->IsInitialized()) {
    throw DataLossError(
        "protobuf message " + wanted +
        " is missing required fields: " + out->InitializationErrorString());
  }
}

template <class MessageT>
MessageT from_proto_value(const Value& value) {
  MessageT out;
  from_proto_value(value, &out);
  return out;
}

}  // namespace ckpt

#endif  // CKPT_PROTO_H_
