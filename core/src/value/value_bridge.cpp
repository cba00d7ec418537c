#include "value/value_bridge.h"

#include <ckpt/errors.h>
#include <ckpt/sdk/boxes.h>
#include <ckpt/sdk/json.h>
#include <ckpt/sdk/value.h>

#include <algorithm>
#include <cstring>

namespace ckpt::internal {

namespace {

ckpt_value_kind c_kind(Value::Kind kind) {
  using K = Value::Kind;
  switch (kind) {
    case K::kNone:
      return CKPT_VALUE_NONE;
    case K::kBool:
      return CKPT_VALUE_BOOL;
    case K::kInt:
      return CKPT_VALUE_INT;
    case K::kDouble:
      return CKPT_VALUE_DOUBLE;
    case K::kString:
      return CKPT_VALUE_STRING;
    case K::kArray:
      return CKPT_VALUE_ARRAY;
    case K::kDict:
      return CKPT_VALUE_DICT;
    case K::kList:
      return CKPT_VALUE_LIST;
    case K::kJson:
      return CKPT_VALUE_JSON;
    case K::kProto:
      return CKPT_VALUE_PROTO;
    case K::kObject:
      return CKPT_VALUE_OBJECT;
    case K::kStateful:
      return CKPT_VALUE_STATEFUL;
    case K::kArraySpec:
      return CKPT_VALUE_ARRAY_SPEC;
    case K::kScalarSpec:
      return CKPT_VALUE_SCALAR_SPEC;
    case K::kPlaceholder:
      return CKPT_VALUE_PLACEHOLDER;
    case K::kProtoType:
      return CKPT_VALUE_PROTO_TYPE;
    case K::kJsonType:
      return CKPT_VALUE_JSON_TYPE;
    case K::kShardedArray:
      return CKPT_VALUE_SHARDED_ARRAY;
    case K::kShardedSpec:
      return CKPT_VALUE_SHARDED_SPEC;
  }
  return CKPT_VALUE_NONE;
}

Value::Kind scalar_leaf_kind(int64_t c_kind) {
  switch (c_kind) {
    case CKPT_VALUE_BOOL:
      return Value::Kind::kBool;
    case CKPT_VALUE_INT:
      return Value::Kind::kInt;
    case CKPT_VALUE_DOUBLE:
      return Value::Kind::kDouble;
    case CKPT_VALUE_STRING:
      return Value::Kind::kString;
    default:
      throw PluginError("scalar spec of unsupported leaf kind " +
                        std::to_string(c_kind));
  }
}

Shape shape_of(const ckpt_array& array) {
  if (array.tensor.ndim < 0 || (array.tensor.ndim > 0 && !array.tensor.shape)) {
    throw PluginError("array with an invalid shape");
  }
  return Shape(array.tensor.shape, array.tensor.shape + array.tensor.ndim);
}

}  // namespace

// DType's numbers are the ABI's codes.
static_assert(static_cast<int>(DType::kBool) == CKPT_DTYPE_BOOL);
static_assert(static_cast<int>(DType::kFloat32) == CKPT_DTYPE_FLOAT32);
static_assert(static_cast<int>(DType::kComplex128) == CKPT_DTYPE_COMPLEX128);

ckpt_dtype to_c_dtype(DType dtype) { return static_cast<ckpt_dtype>(dtype); }

namespace {

// The number in a C enum field a plugin filled: read as its integer, since
// a value outside the enum's range (a hostile or newer plugin) may not be
// loaded as the enum type in C++.
template <class E>
int raw(const E& field) {
  static_assert(sizeof(E) == sizeof(int), "C enums are int-sized here");
  int value;
  std::memcpy(&value, &field, sizeof value);
  return value;
}

// from_c_dtype of a dtype field a plugin filled.
DType dtype_of_field(const ckpt_dtype& field) {
  const int dtype = raw(field);
  if (dtype < CKPT_DTYPE_BOOL || dtype > CKPT_DTYPE_COMPLEX128) {
    throw InvalidArgumentError("invalid dtype " + std::to_string(dtype));
  }
  return static_cast<DType>(dtype);
}

DType dtype_of(const ckpt_array& array) { return dtype_of_field(array.dtype); }

}  // namespace

DType from_c_dtype(ckpt_dtype dtype) {
  if (!sdk::dtype_info(dtype)) {
    throw InvalidArgumentError("invalid dtype " + std::to_string(dtype));
  }
  return static_cast<DType>(dtype);
}

CValueView::CValueView(const Value& value, bool all_immutable)
    : all_immutable_(all_immutable) {
  fill(value, root_, 0);
}

namespace {
thread_local SharedCValueView* innermost_shared_view = nullptr;
}  // namespace

SharedCValueView::SharedCValueView(const Value& value, bool all_immutable)
    : value_(&value),
      all_immutable_(all_immutable),
      outer_(innermost_shared_view) {
  innermost_shared_view = this;
}

SharedCValueView::~SharedCValueView() {
  // Unlinks itself wherever it is: several may end in any order.
  for (SharedCValueView** link = &innermost_shared_view; *link;
       link = &(*link)->outer_) {
    if (*link == this) {
      *link = outer_;
      return;
    }
  }
}

std::shared_ptr<const CValueView> SharedCValueView::of(const Value& value) {
  for (SharedCValueView* s = innermost_shared_view; s; s = s->outer_) {
    if (s->value_ == &value) {
      if (!s->view_) {
        s->view_ = std::make_shared<const CValueView>(value, s->all_immutable_);
      }
      return s->view_;
    }
  }
  return std::make_shared<const CValueView>(value);
}

void CValueView::fill(const Value& in, ckpt_value& out, size_t depth) {
  using K = Value::Kind;
  out = ckpt_value{};
  out.struct_size = CKPT_VALUE_STRUCT_SIZE;
  out.kind = c_kind(in.kind());
  switch (in.kind()) {
    case K::kBool:
      out.int_value = in.as_bool() ? 1 : 0;
      break;
    case K::kInt:
      out.int_value = in.as_int();
      break;
    case K::kDouble:
      out.double_value = in.as_double();
      break;
    case K::kString:
      out.string_value = arena_.text(in.as_string());
      out.string_len = in.as_string().size();
      break;
    case K::kJson: {
      std::string text = in.as_json().dump();
      out.string_len = text.size();
      out.string_value = arena_.adopt(std::move(text));
      break;
    }
    case K::kDict:
    case K::kList:
      fill_container(in, out, depth + 1);
      break;
    case K::kArray:
    case K::kArraySpec:
      out.array = &array_of(in);
      break;
    case K::kProto:
    case K::kProtoType:
      out.proto = &proto_of(in.as_proto());
      break;
    case K::kObject: {
      ckpt_object& object = arena_.object();
      object.typestr = arena_.text(in.as_object().typestr);
      object.pointer = in.as_object().object.get();
      arena_.keep(in.as_object().object);
      out.object = &object;
      break;
    }
    case K::kScalarSpec:
      out.int_value = c_kind(in.scalar_kind());
      break;
    case K::kShardedArray:
    case K::kShardedSpec:
      // abi.h: a kind added after 1.0 keeps its payload at `object`.
      out.object = reinterpret_cast<const ckpt_object*>(&sharded_of(in));
      required_minor_ = std::max<uint32_t>(required_minor_, 3);
      break;
    case K::kNone:
    case K::kStateful:
    case K::kPlaceholder:
    case K::kJsonType:
      break;
  }
}

void CValueView::fill_container(const Value& in, ckpt_value& out,
                                size_t depth) {
  if (depth > kMaxNestingDepth) {
    throw InvalidArgumentError("a tree nested deeper than " +
                               std::to_string(kMaxNestingDepth) +
                               " levels of dicts and lists");
  }
  const size_t n = in.size();
  ckpt_value* children = arena_.nodes(n);
  size_t i = 0;
  if (in.kind() == Value::Kind::kDict) {
    const char** keys = arena_.keys(n);
    for (const auto& [key, child] : in.as_dict()) {
      if (key.find('\0') != std::string::npos) {
        std::string shown;
        for (char c : key)
          shown += c == '\0' ? std::string("\\0") : std::string(1, c);
        throw InvalidArgumentError(
            "dict key '" + shown +
            "' holds a NUL byte, which handlers cannot receive (keys cross "
            "the C ABI as NUL-terminated strings)");
      }
      keys[i] = arena_.text(key);
      fill(child, children[i++], depth);
    }
    out.keys = keys;
  } else {
    for (const Value& child : in.as_list()) fill(child, children[i++], depth);
  }
  out.count = n;
  out.children = children;
}

const ckpt_array& CValueView::array_of(const Array& a) {
  ckpt_array& array = arena_.array();
  array.tensor.device = DLDevice{kDLCPU, 0};
  array.dtype = to_c_dtype(a.dtype());
  array.flags = a.immutable() || all_immutable_ ? CKPT_ARRAY_IMMUTABLE : 0u;
  array.tensor.data = a.data();
  array.tensor.ndim = static_cast<int32_t>(a.shape().size());
  array.tensor.shape = const_cast<int64_t*>(arena_.dims(a.shape()));
  array.tensor.strides = const_cast<int64_t*>(arena_.dims(a.strides()));
  array.tensor.dtype = sdk::dl_dtype(array.dtype);
  arena_.keep(a.owner());
  return array;
}

namespace {

// InvalidArgumentError unless `box` has the rank of `global_shape` and
// lies inside it.
void check_box(const Box& box, const Shape& global_shape,
               const std::string& what) {
  if (!sdk::box_inside(box, global_shape)) {
    throw InvalidArgumentError(what + ": a box (offset " +
                               nlohmann::json(box.offset).dump() + ", shape " +
                               nlohmann::json(box.shape).dump() +
                               ") that does not lie inside the global shape " +
                               nlohmann::json(global_shape).dump());
  }
}

}  // namespace

const ckpt_sharded_array& CValueView::sharded_of(const Value& in) {
  ckpt_sharded_array& out = arena_.sharded();
  auto shard = [this](ckpt_shard& s, const Shape& offset, const Shape& shape,
                      const ckpt_array* array, int64_t index) {
    s.offset = arena_.dims(offset);
    s.shape = arena_.dims(shape);
    s.array = array;
    s.index = index;
  };
  const Shape* global = nullptr;
  ckpt_shard* shards = nullptr;
  size_t num_shards = 0;
  if (in.kind() == Value::Kind::kShardedArray) {
    const ShardedArray& a = in.as_sharded_array();
    global = &a.global_shape;
    out.dtype = to_c_dtype(a.dtype);
    const ShardPlacement* placement = a.placement.get();
    if (placement && placement->piece_of_shard.size() != a.shards.size()) {
      placement = nullptr;  // not this value's: made for other shards
    }
    num_shards = a.shards.size();
    shards = arena_.shards(num_shards);
    for (size_t i = 0; i < num_shards; ++i) {
      const Shard& s = a.shards[i];
      check_box(s.box(), a.global_shape, "a sharded array");
      if (s.data.dtype() != a.dtype) {
        throw InvalidArgumentError(
            "a sharded array of dtype " + std::string(dtype_name(a.dtype)) +
            " has a shard of dtype " + std::string(dtype_name(s.data.dtype())));
      }
      shard(
          shards[i], s.offset, s.data.shape(), &array_of(s.data),
          placement ? static_cast<int64_t>(placement->piece_of_shard[i]) : -1);
    }
    if (placement) {
      ckpt_shard* pieces = arena_.shards(placement->pieces.size());
      for (size_t k = 0; k < placement->pieces.size(); ++k) {
        const Box& box = placement->pieces[k];
        shard(pieces[k], box.offset, box.shape, nullptr, placement->writers[k]);
      }
      out.num_pieces = placement->pieces.size();
      out.pieces = pieces;
    }
  } else {
    const ShardedSpec& spec = in.as_sharded_spec();
    global = &spec.global_shape;
    out.dtype = spec.dtype ? to_c_dtype(*spec.dtype) : CKPT_DTYPE_UNKNOWN;
    num_shards = spec.boxes.size();
    shards = arena_.shards(num_shards);
    for (size_t i = 0; i < num_shards; ++i) {
      const Box& box = spec.boxes[i];
      check_box(box, spec.global_shape, "a sharded spec");
      shard(shards[i], box.offset, box.shape, nullptr, -1);
    }
  }
  out.ndim = static_cast<int32_t>(global->size());
  out.global_shape = arena_.dims(*global);
  out.num_shards = num_shards;
  out.shards = shards;
  return out;
}

const ckpt_array& CValueView::array_of(const Value& in) {
  if (in.kind() == Value::Kind::kArray) return array_of(in.as_array());
  ckpt_array& array = arena_.array();
  array.tensor.device = DLDevice{kDLCPU, 0};
  {
    const ArraySpec& spec = in.as_array_spec();
    if (spec.dtype) {
      array.dtype = to_c_dtype(*spec.dtype);
    } else {
      array.dtype = CKPT_DTYPE_UNKNOWN;
      required_minor_ = std::max<uint32_t>(required_minor_, 1);
    }
    array.tensor.ndim = static_cast<int32_t>(spec.shape.size());
    array.tensor.shape = const_cast<int64_t*>(arena_.dims(spec.shape));
  }
  array.tensor.dtype = sdk::dl_dtype(array.dtype);
  return array;
}

const ckpt_proto& CValueView::proto_of(const ProtoMessage& m) {
  ckpt_proto& proto = arena_.proto();
  proto.full_name = arena_.text(m.full_name);
  proto.bytes = arena_.bytes(m.bytes, m.descriptor_set);
  proto.bytes_len = m.bytes.size();
  proto.descriptor_set = proto.bytes + m.bytes.size();
  proto.descriptor_set_len = m.descriptor_set.size();
  return proto;
}

namespace {

// The Array a plugin's `a` describes, sharing `keepalive`.
Array array_from_c(const ckpt_array& a,
                   const std::shared_ptr<void>& keepalive) {
  if (a.struct_size < CKPT_ARRAY_STRUCT_SIZE) {
    throw PluginError("returned an array whose struct_size is too small");
  }
  Shape shape = shape_of(a);
  // Unset (0) is taken as CPU: plugins of ABI 1.0 may leave it so.
  const int device = raw(a.tensor.device.device_type);
  if (device != 0 && device != kDLCPU) {
    throw PluginError("returned an array that is not in CPU memory");
  }
  if (!a.tensor.data) {
    for (int64_t d : shape) {
      if (d != 0) throw PluginError("returned an array without data");
    }
  }
  std::vector<int64_t> strides;
  if (a.tensor.strides) {
    strides.assign(a.tensor.strides, a.tensor.strides + a.tensor.ndim);
  }
  void* data = static_cast<char*>(a.tensor.data) + a.tensor.byte_offset;
  return Array::share(dtype_of(a), std::move(shape), data, keepalive,
                      /*immutable=*/false, std::move(strides));
}

// The deepest rank a plugin may return for a sharded array (HDF5's and the
// pytree's limit is 32).
constexpr int32_t kMaxShardedRank = 64;

// A plugin's CKPT_VALUE_SHARDED_ARRAY or CKPT_VALUE_SHARDED_SPEC.
Value sharded_from_c(const ckpt_value& in,
                     const std::shared_ptr<void>& keepalive) {
  const auto* p = reinterpret_cast<const ckpt_sharded_array*>(in.object);
  if (!p || p->struct_size < CKPT_SHARDED_ARRAY_STRUCT_SIZE) {
    throw PluginError("sharded value without a complete ckpt_sharded_array");
  }
  if (p->ndim < 0 || p->ndim > kMaxShardedRank ||
      (p->ndim > 0 && !p->global_shape) || (p->num_shards && !p->shards)) {
    throw PluginError("sharded value with an invalid shape or shard list");
  }
  const size_t rank = static_cast<size_t>(p->ndim);
  Shape global(p->global_shape, p->global_shape + rank);
  std::vector<Box> boxes;
  for (size_t i = 0; i < p->num_shards; ++i) {
    const ckpt_shard& s = p->shards[i];
    if (rank > 0 && (!s.offset || !s.shape)) {
      throw PluginError("sharded value with a shard without offset or shape");
    }
    boxes.push_back(
        {Shape(s.offset, s.offset + rank), Shape(s.shape, s.shape + rank)});
  }
  if (raw(in.kind) == CKPT_VALUE_SHARDED_SPEC) {
    ShardedSpec spec;
    if (raw(p->dtype) != CKPT_DTYPE_UNKNOWN)
      spec.dtype = dtype_of_field(p->dtype);
    spec.global_shape = std::move(global);
    spec.boxes = std::move(boxes);
    return Value(std::move(spec));
  }
  ShardedArray out;
  out.dtype = dtype_of_field(p->dtype);
  out.global_shape = std::move(global);
  for (size_t i = 0; i < p->num_shards; ++i) {
    if (!p->shards[i].array) {
      throw PluginError("sharded array with a shard without elements");
    }
    Array data = array_from_c(*p->shards[i].array, keepalive);
    if (data.dtype() != out.dtype || data.shape() != boxes[i].shape) {
      throw PluginError(
          "sharded array with a shard whose elements are not "
          "its box's dtype and shape");
    }
    out.shards.push_back({std::move(boxes[i].offset), std::move(data)});
  }
  return Value(std::move(out));
}

Value json_from_c(const ckpt_value& in) {
  auto text = sdk::string_of(in);
  try {
    sdk::check_json_depth(text, "returned JSON text", kMaxNestingDepth);
  } catch (const sdk::Error& e) {
    throw PluginError(e.what());
  }
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded()) throw PluginError("returned malformed JSON text");
  return Value::json(std::move(doc));
}

Value array_spec_from_c(const ckpt_value& in) {
  if (!in.array) throw PluginError("array spec without array");
  std::optional<DType> dtype;
  if (raw(in.array->dtype) != CKPT_DTYPE_UNKNOWN) {
    dtype = dtype_of(*in.array);
  }
  return Value(ArraySpec{dtype, shape_of(*in.array)});
}

Value proto_from_c(const ckpt_value& in) {
  if (!in.proto || !in.proto->full_name) {
    throw PluginError("protobuf value without a type name");
  }
  const ckpt_proto& p = *in.proto;
  if ((p.bytes_len && !p.bytes) ||
      (p.descriptor_set_len && !p.descriptor_set)) {
    throw PluginError("protobuf value with a length but no bytes");
  }
  ProtoMessage m;
  m.full_name = p.full_name;
  if (p.bytes_len) {
    m.bytes.assign(reinterpret_cast<const char*>(p.bytes), p.bytes_len);
  }
  if (p.descriptor_set_len) {
    m.descriptor_set.assign(reinterpret_cast<const char*>(p.descriptor_set),
                            p.descriptor_set_len);
  }
  return raw(in.kind) == CKPT_VALUE_PROTO ? Value::proto(std::move(m))
                                          : Value::proto_type(std::move(m));
}

Value object_from_c(const ckpt_value& in,
                    const std::shared_ptr<void>& keepalive) {
  if (!in.object || !in.object->typestr) {
    throw PluginError("object value without a typestr");
  }
  // Shares the plugin value's lifetime.
  return Value::object(in.object->typestr,
                       std::shared_ptr<void>(keepalive, in.object->pointer));
}

Value from_c_value_at(const ckpt_value& in,
                      const std::shared_ptr<void>& keepalive, size_t depth);

// A dict or list, inside `depth` dicts and lists (itself included).
Value container_from_c(const ckpt_value& in,
                       const std::shared_ptr<void>& keepalive, size_t depth) {
  if (depth > kMaxNestingDepth) {
    throw PluginError("returned a value nested deeper than " +
                      std::to_string(kMaxNestingDepth) +
                      " levels of dicts and lists (or a cyclic one)");
  }
  if (raw(in.kind) == CKPT_VALUE_DICT) {
    if (in.count && (!in.children || !in.keys)) {
      throw PluginError("dict value without children or keys");
    }
    Value::Dict dict;
    dict.reserve(in.count);
    for (size_t i = 0; i < in.count; ++i) {
      dict.emplace_back(in.keys[i] ? in.keys[i] : "",
                        from_c_value_at(in.children[i], keepalive, depth));
    }
    return Value::dict(std::move(dict));
  }
  if (in.count && !in.children) throw PluginError("list without children");
  Value::List list;
  list.reserve(in.count);
  for (size_t i = 0; i < in.count; ++i) {
    list.push_back(from_c_value_at(in.children[i], keepalive, depth));
  }
  return Value::list(std::move(list));
}

// from_c_value of `in`, inside `depth` dicts and lists.
Value from_c_value_at(const ckpt_value& in,
                      const std::shared_ptr<void>& keepalive, size_t depth) {
  // A plugin's structs are read only when they are at least their 1.0 size.
  if (in.struct_size < CKPT_VALUE_STRUCT_SIZE ||
      (in.array && in.array->struct_size < CKPT_ARRAY_STRUCT_SIZE) ||
      (in.proto && in.proto->struct_size < CKPT_PROTO_STRUCT_SIZE) ||
      (in.object && in.object->struct_size < CKPT_OBJECT_STRUCT_SIZE)) {
    throw PluginError(
        "returned a value whose struct_size is smaller than "
        "ABI 1.0's (is struct_size set?)");
  }
  switch (raw(in.kind)) {
    case CKPT_VALUE_NONE:
      return Value();
    case CKPT_VALUE_BOOL:
      return Value(in.int_value != 0);
    case CKPT_VALUE_INT:
      return Value(static_cast<long long>(in.int_value));
    case CKPT_VALUE_DOUBLE:
      return Value(in.double_value);
    case CKPT_VALUE_STRING:
      return Value(std::string(sdk::string_of(in)));
    case CKPT_VALUE_JSON:
      return json_from_c(in);
    case CKPT_VALUE_DICT:
    case CKPT_VALUE_LIST:
      return container_from_c(in, keepalive, depth + 1);
    case CKPT_VALUE_ARRAY:
      if (!in.array) throw PluginError("array value without array");
      return Value(array_from_c(*in.array, keepalive));
    case CKPT_VALUE_ARRAY_SPEC:
      return array_spec_from_c(in);
    case CKPT_VALUE_SCALAR_SPEC:
      return Value::scalar_spec(scalar_leaf_kind(in.int_value));
    case CKPT_VALUE_PLACEHOLDER:
      return Value::placeholder();
    case CKPT_VALUE_JSON_TYPE:
      return Value::json_type();
    case CKPT_VALUE_PROTO:
    case CKPT_VALUE_PROTO_TYPE:
      return proto_from_c(in);
    case CKPT_VALUE_OBJECT:
      return object_from_c(in, keepalive);
    case CKPT_VALUE_SHARDED_ARRAY:
    case CKPT_VALUE_SHARDED_SPEC:
      return sharded_from_c(in, keepalive);
    case CKPT_VALUE_STATEFUL:
      break;
  }
  throw PluginError("returned a value of unsupported kind " +
                    std::to_string(raw(in.kind)));
}

}  // namespace

Value from_c_value(const ckpt_value& in,
                   const std::shared_ptr<void>& keepalive) {
  return from_c_value_at(in, keepalive, 0);
}

}  // namespace ckpt::internal
