// Values described for messages (ckpt/value.h).
#include <ckpt/sdk/text.h>
#include <ckpt/value.h>

#include <string>

namespace ckpt {

std::string_view kind_name(Value::Kind kind) {
  using K = Value::Kind;
  switch (kind) {
    case K::kNone:
      return "none";
    case K::kBool:
      return "bool";
    case K::kInt:
      return "int";
    case K::kDouble:
      return "double";
    case K::kString:
      return "string";
    case K::kArray:
      return "array";
    case K::kDict:
      return "dict";
    case K::kList:
      return "list";
    case K::kJson:
      return "JSON document";
    case K::kProto:
      return "protobuf message";
    case K::kObject:
      return "object";
    case K::kStateful:
      return "stateful checkpointable";
    case K::kArraySpec:
      return "array spec";
    case K::kScalarSpec:
      return "scalar spec";
    case K::kPlaceholder:
      return "placeholder";
    case K::kProtoType:
      return "protobuf type";
    case K::kJsonType:
      return "JSON type";
    case K::kShardedArray:
      return "sharded array";
    case K::kShardedSpec:
      return "sharded spec";
  }
  return "unknown";
}

std::string describe(const Value& value) {
  using K = Value::Kind;
  switch (value.kind()) {
    case K::kDict:
      return "dict with " + std::to_string(value.size()) + " keys";
    case K::kList:
      return "list of " + std::to_string(value.size());
    case K::kArray:
      return std::string(dtype_name(value.as_array().dtype())) + " array " +
             sdk::shape_text(value.as_array().shape());
    case K::kArraySpec:
      return std::string(dtype_name(value.as_array_spec().dtype)) +
             " array spec " + sdk::shape_text(value.as_array_spec().shape);
    case K::kShardedArray: {
      const ShardedArray& a = value.as_sharded_array();
      return std::string(dtype_name(a.dtype)) + " sharded array " +
             sdk::shape_text(a.global_shape) + " (" +
             std::to_string(a.shards.size()) + " local shards)";
    }
    case K::kShardedSpec: {
      const ShardedSpec& s = value.as_sharded_spec();
      return std::string(dtype_name(s.dtype)) + " sharded spec " +
             sdk::shape_text(s.global_shape) + " (" +
             std::to_string(s.boxes.size()) + " boxes)";
    }
    case K::kProto:
    case K::kProtoType:
      return std::string(kind_name(value.kind())) + " " +
             value.as_proto().full_name;
    case K::kObject:
      return "object of type " + value.as_object().typestr;
    default:
      return std::string(kind_name(value.kind()));
  }
}

}  // namespace ckpt
