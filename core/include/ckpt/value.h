// ckpt/value.h -- what a host passes to save and gets back from load.
//
// A Value is one of:
//  - a tree: dict (ordered string keys), list, and leaves (none, bool, int64,
//    double, string, Array);
//  - a JSON document (nlohmann::json), a protobuf message (ProtoMessage, see
//    ckpt/proto.h to make one from a google::protobuf::Message), a
//    StatefulCheckpointable, or a user object tagged with a typestr;
//  - a sharded array: this process's pieces of a global array (see
//    ShardedArray), a leaf of a tree;
//  - an abstract leaf, for load targets: ArraySpec (dtype + shape),
//    ShardedSpec (the boxes of a global array to load), a scalar kind, a
//    placeholder (skip this leaf), a protobuf type, "a JSON document".
//
// Values copy like ordinary C++ values, except array memory, which is shared
// between copies of an Array (see Array's ownership rules).
//
// Nesting: a Value copies, compares, moves and destroys without recursion,
// however deep its dicts and lists nest. What ckpt saves, loads and prints
// nests at most kMaxNestingDepth levels (see there).
#ifndef CKPT_VALUE_H_
#define CKPT_VALUE_H_

#include <ckpt/errors.h>
#include <ckpt/export.h>

#include <complex>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace ckpt {

// The numbers are the C ABI's ckpt_dtype codes (ckpt/abi.h).
enum class DType {
  kBool = 1,
  kInt8 = 2,
  kInt16 = 3,
  kInt32 = 4,
  kInt64 = 5,
  kUInt8 = 6,
  kUInt16 = 7,
  kUInt32 = 8,
  kUInt64 = 9,
  kFloat16 = 10,
  kBFloat16 = 11,
  kFloat32 = 12,
  kFloat64 = 13,
  kComplex64 = 14,
  kComplex128 = 15,
};

// Bytes per element.
CKPT_API size_t dtype_size(DType dtype);
// NumPy's name: "bool", "int8", ..., "float16", "bfloat16", "complex64".
CKPT_API std::string_view dtype_name(DType dtype);
// An array spec's dtype: its name, or "unknown" when it was not recorded.
CKPT_API std::string_view dtype_name(const std::optional<DType>& dtype);
// Inverse of dtype_name; throws InvalidArgumentError for an unknown name.
CKPT_API DType dtype_from_name(std::string_view name);

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<bool>() {
  return DType::kBool;
}
template <>
constexpr DType dtype_of<int8_t>() {
  return DType::kInt8;
}
template <>
constexpr DType dtype_of<int16_t>() {
  return DType::kInt16;
}
template <>
constexpr DType dtype_of<int32_t>() {
  return DType::kInt32;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::kInt64;
}
template <>
constexpr DType dtype_of<uint8_t>() {
  return DType::kUInt8;
}
template <>
constexpr DType dtype_of<uint16_t>() {
  return DType::kUInt16;
}
template <>
constexpr DType dtype_of<uint32_t>() {
  return DType::kUInt32;
}
template <>
constexpr DType dtype_of<uint64_t>() {
  return DType::kUInt64;
}
template <>
constexpr DType dtype_of<float>() {
  return DType::kFloat32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::kFloat64;
}
template <>
constexpr DType dtype_of<std::complex<float>>() {
  return DType::kComplex64;
}
template <>
constexpr DType dtype_of<std::complex<double>>() {
  return DType::kComplex128;
}

using Shape = std::vector<int64_t>;

// An n-d array on the CPU. Memory is either owned (shared between copies of
// the Array through a shared_ptr) or borrowed from the caller.
//
// Ownership rules:
//  - copy()/zeros()/from() own new memory;
//  - borrow() points at caller memory: the caller keeps it alive while any
//    Array pointing at it lives, and a save's snapshot copies it;
//  - share() keeps `owner` alive; with immutable = true the caller promises
//    the bytes never change, so an async save may write them from the
//    background without a snapshot copy.
class CKPT_API Array {
 public:
  Array() = default;

  static Array zeros(DType dtype, Shape shape);
  static Array copy(DType dtype, Shape shape, const void* data);
  static Array borrow(DType dtype, Shape shape, void* data,
                      std::vector<int64_t> strides = {});
  static Array share(DType dtype, Shape shape, void* data,
                     std::shared_ptr<void> owner, bool immutable,
                     std::vector<int64_t> strides = {});
  template <class T>
  static Array from(std::vector<T> values, Shape shape = {}) {
    if (shape.empty() && values.size() != 1) {
      shape = {static_cast<int64_t>(values.size())};
    }
    auto owner = std::make_shared<std::vector<T>>(std::move(values));
    Array array = share(dtype_of<T>(), std::move(shape), owner->data(), owner,
                        /*immutable=*/false);
    if (static_cast<size_t>(array.num_elements()) != owner->size()) {
      throw InvalidArgumentError("Array::from: shape does not match " +
                                 std::to_string(owner->size()) + " values");
    }
    return array;
  }

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  // In elements; empty = C-contiguous.
  const std::vector<int64_t>& strides() const { return strides_; }
  int64_t num_elements() const;
  size_t nbytes() const { return num_elements() * dtype_size(dtype_); }
  bool is_contiguous() const;
  bool immutable() const { return immutable_; }
  void* data() const { return data_; }
  template <class T>
  T* data_as() const {
    return static_cast<T*>(data_);
  }
  // The memory's keeper (empty for borrowed arrays).
  const std::shared_ptr<void>& owner() const { return owner_; }

  // A C-contiguous array with its own copy of the elements.
  Array contiguous_copy() const;
  // The elements in C order.
  template <class T>
  std::vector<T> to_vector() const {
    Array c = is_contiguous() ? *this : contiguous_copy();
    const T* p = c.data_as<T>();
    return std::vector<T>(p, p + c.num_elements());
  }

  // Same dtype, shape and element bytes.
  bool operator==(const Array& other) const;
  bool operator!=(const Array& other) const { return !(*this == other); }

 private:
  DType dtype_ = DType::kFloat32;
  Shape shape_;
  std::vector<int64_t> strides_;
  void* data_ = nullptr;
  std::shared_ptr<void> owner_;
  bool immutable_ = false;
};

struct CKPT_API ArraySpec {
  // nullopt: the dtype was not recorded (Orbax's metadata has none); as a
  // load target it means "the dtype it was saved with".
  std::optional<DType> dtype = DType::kFloat32;
  Shape shape;
  bool operator==(const ArraySpec& o) const {
    return dtype == o.dtype && shape == o.shape;
  }
};

// A box of a global array's index space: its first index and its extent in
// every dimension.
struct CKPT_API Box {
  Shape offset;
  Shape shape;
  bool operator==(const Box& o) const {
    return offset == o.offset && shape == o.shape;
  }
  bool operator!=(const Box& o) const { return !(*this == o); }
};

// One piece of a global array held by this process: the elements of the
// box at `offset` whose shape is data.shape().
struct CKPT_API Shard {
  Shape offset;
  Array data;
  Box box() const { return {offset, data.shape()}; }
  bool operator==(const Shard& o) const {
    return offset == o.offset && data == o.data;
  }
};

// Where the pieces of a sharded array go, as a save decided it over every
// process's shards: the distinct boxes (which cover the global shape
// exactly, without overlap), the one process that writes each (the lowest
// process holding it: a replicated box is written once), and for each of
// this process's shards the box it holds.
struct CKPT_API ShardPlacement {
  std::vector<Box> pieces;
  std::vector<int> writers;            // per piece
  std::vector<size_t> piece_of_shard;  // per shard of the ShardedArray
};

// A global array of which each process holds pieces (Orbax's jax.Array
// with a sharding; DCP's DTensor). Every process passes the same dtype and
// global shape, and its own shards: its boxes with their elements. Boxes
// of different processes are either the same (a replicated piece, written
// once) or disjoint, and together they cover the global shape. Shard data
// follows Array's ownership rules: shards made with Array::share(...,
// immutable = true) are written without a snapshot copy by an async save.
//
// Loading one asks for boxes (ShardedSpec) and returns a ShardedArray with
// one shard per box asked for, whatever sharding the checkpoint was
// written with.
struct CKPT_API ShardedArray {
  DType dtype = DType::kFloat32;
  Shape global_shape;
  std::vector<Shard> shards;
  // Set by a save for the handler (what the caller sets is replaced).
  std::shared_ptr<const ShardPlacement> placement;
  bool operator==(const ShardedArray& o) const {
    return dtype == o.dtype && global_shape == o.global_shape &&
           shards == o.shards;
  }
};

// A load target: the boxes of a global array this process wants. From a
// checkpoint's metadata: the global shape and dtype, and the boxes it
// stores.
struct CKPT_API ShardedSpec {
  std::optional<DType> dtype;  // nullopt: as saved
  Shape global_shape;
  std::vector<Box> boxes;
  bool operator==(const ShardedSpec& o) const {
    return dtype == o.dtype && global_shape == o.global_shape &&
           boxes == o.boxes;
  }
};

// `count` boxes splitting `global_shape` along dimension `dim` as evenly as
// the count allows (the first extent % count boxes get one more row).
// InvalidArgumentError for a dimension the shape lacks or count < 1.
CKPT_API std::vector<Box> split_evenly(const Shape& global_shape, size_t dim,
                                       int count);

// A protobuf message (or message type) in the form that crosses the C ABI.
struct CKPT_API ProtoMessage {
  std::string full_name;       // e.g. "my.pkg.Config"
  std::string bytes;           // wire encoding (empty for a type)
  std::string descriptor_set;  // serialized FileDescriptorSet
  bool operator==(const ProtoMessage& o) const {
    return full_name == o.full_name && bytes == o.bytes;
  }
};

// A host object whose meaning is agreed between the host and the handler
// that claims `typestr`.
struct CKPT_API UserObject {
  std::string typestr;
  std::shared_ptr<void> object;
  bool operator==(const UserObject& o) const {
    return typestr == o.typestr && object == o.object;
  }
};

class StatefulCheckpointable;

// The deepest nesting of dicts and lists (and of a JSON document's objects
// and arrays) ckpt takes: Value::json refuses a deeper document, and
// handing a handler a tree nested deeper is InvalidArgumentError. Far above
// any real checkpoint's structure, far below what overflows a thread's
// stack; the same limit as for JSON read from disk (sdk::kMaxJsonDepth).
inline constexpr size_t kMaxNestingDepth = 512;

class CKPT_API Value {
 public:
  enum class Kind {
    kNone,
    kBool,
    kInt,
    kDouble,
    kString,
    kArray,
    kDict,
    kList,
    kJson,
    kProto,
    kObject,
    kStateful,
    kArraySpec,
    kScalarSpec,
    kPlaceholder,
    kProtoType,
    kJsonType,
    kShardedArray,
    kShardedSpec,
  };
  using Dict = std::vector<std::pair<std::string, Value>>;
  using List = std::vector<Value>;

  Value() = default;  // none
  Value(std::nullptr_t) {}
  // Without recursion, at any depth (see "Nesting" above).
  Value(const Value& other);
  Value(Value&& other) noexcept;
  Value& operator=(const Value& other);
  Value& operator=(Value&& other) noexcept;  // `other` may be inside *this
  ~Value();

  Value(bool v) : kind_(Kind::kBool), data_(v) {}
  Value(int v) : kind_(Kind::kInt), data_(int64_t{v}) {}
  Value(long v) : kind_(Kind::kInt), data_(int64_t{v}) {}
  Value(long long v) : kind_(Kind::kInt), data_(int64_t{v}) {}
  // Unsigned integers are stored as int64; InvalidArgumentError above
  // INT64_MAX.
  Value(unsigned v) : Value(static_cast<long long>(v)) {}
  Value(unsigned long v) : Value(checked_int64(v)) {}
  Value(unsigned long long v) : Value(checked_int64(v)) {}
  Value(double v) : kind_(Kind::kDouble), data_(v) {}
  Value(const char* v) : kind_(Kind::kString), data_(std::string(v)) {}
  Value(std::string v) : kind_(Kind::kString), data_(std::move(v)) {}
  Value(Array v) : kind_(Kind::kArray), data_(std::move(v)) {}
  Value(ArraySpec v) : kind_(Kind::kArraySpec), data_(std::move(v)) {}
  Value(ShardedArray v) : kind_(Kind::kShardedArray), data_(std::move(v)) {}
  Value(ShardedSpec v) : kind_(Kind::kShardedSpec), data_(std::move(v)) {}

  static Value dict(
      std::initializer_list<std::pair<std::string, Value>> items = {});
  static Value dict(Dict items);
  static Value list(std::initializer_list<Value> items = {});
  static Value list(List items);
  // InvalidArgumentError when `document` nests deeper than kMaxNestingDepth.
  static Value json(nlohmann::json document);
  static Value proto(ProtoMessage message);
  static Value proto_type(ProtoMessage type);
  static Value stateful(std::shared_ptr<StatefulCheckpointable> object);
  static Value object(std::string typestr, std::shared_ptr<void> object);
  // An abstract scalar leaf: kBool, kInt, kDouble or kString.
  static Value scalar_spec(Kind leaf_kind);
  static Value placeholder();
  static Value json_type();

  Kind kind() const { return kind_; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_tree_container() const {
    return kind_ == Kind::kDict || kind_ == Kind::kList;
  }

  // Accessors throw InvalidArgumentError on a kind mismatch.
  bool as_bool() const;
  int64_t as_int() const;
  double as_double() const;  // also accepts an int
  const std::string& as_string() const;
  const Array& as_array() const;
  const Dict& as_dict() const;
  Dict& as_dict();
  const List& as_list() const;
  List& as_list();
  const nlohmann::json& as_json() const;
  const ProtoMessage& as_proto() const;  // kProto and kProtoType
  const UserObject& as_object() const;
  const std::shared_ptr<StatefulCheckpointable>& as_stateful() const;
  const ArraySpec& as_array_spec() const;
  const ShardedArray& as_sharded_array() const;
  ShardedArray& as_sharded_array();
  const ShardedSpec& as_sharded_spec() const;
  Kind scalar_kind() const;  // of a kScalarSpec

  // Dict helpers. find() returns null when absent; at() throws
  // NotFoundError naming the key.
  const Value* find(std::string_view key) const;
  const Value& at(std::string_view key) const;
  // Replaces the value under `key`, or appends it.
  Value& set(std::string key, Value value);
  // List helper.
  void push_back(Value value);
  size_t size() const;  // children of a dict or list

  bool operator==(const Value& other) const;
  bool operator!=(const Value& other) const { return !(*this == other); }

 private:
  using Data = std::variant<std::monostate, bool, int64_t, double, std::string,
                            Array, Dict, List, nlohmann::json, ProtoMessage,
                            UserObject, std::shared_ptr<StatefulCheckpointable>,
                            ArraySpec, Kind, ShardedArray, ShardedSpec>;
  Value(Kind kind, Data data) : kind_(kind), data_(std::move(data)) {}
  static long long checked_int64(unsigned long long v) {
    if (v > static_cast<unsigned long long>(INT64_MAX)) {
      throw InvalidArgumentError("integer " + std::to_string(v) +
                                 " does not fit in int64");
    }
    return static_cast<long long>(v);
  }
  [[noreturn]] void wrong_kind(const char* wanted) const;

  Kind kind_ = Kind::kNone;
  Data data_;
};

// The number of dicts and lists nested at the deepest point of `value`: 0
// for a leaf, 1 for a dict of leaves. A JSON document counts as a leaf.
// Iterative.
CKPT_API size_t nesting_depth(const Value& value);

// The nesting of a JSON document's objects and arrays: 0 for a scalar, 1
// for [1, 2]. Iterative.
CKPT_API size_t nesting_depth(const nlohmann::json& document);

// "none", "bool", "int", "double", "string", "array", "dict", "list", "json",
// "proto", "object", "stateful", "array spec", ...
CKPT_API std::string_view kind_name(Value::Kind kind);

// A short description for error messages: "dict with 3 keys", "float32
// array [2, 3]", "JSON document".
CKPT_API std::string describe(const Value& value);

}  // namespace ckpt

#endif  // CKPT_VALUE_H_
