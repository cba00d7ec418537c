// ckpt/sdk/value.h -- reading the host's ckpt_value trees and building the
// values a plugin hands back.
//
// Reading: ckpt_value is plain C data; the helpers here only spare the
// pointer arithmetic (string_of, child lookups, array byte sizes).
//
// Building: OutValue is an ordinary C++ tree. freeze() turns it into a
// ckpt_owned_value whose deleter frees everything exactly once; array
// memory is kept alive by the shared_ptr each array leaf holds, so a plugin
// can hand over a buffer it allocated without copying it.
#ifndef CKPT_SDK_VALUE_H_
#define CKPT_SDK_VALUE_H_

#include <ckpt/abi.h>
#include <ckpt/sdk/dtype.h>
#include <ckpt/sdk/error.h>
#include <ckpt/sdk/value_arena.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ckpt::sdk {

// The text of a CKPT_VALUE_STRING or CKPT_VALUE_JSON value.
inline std::string_view string_of(const ckpt_value& value) {
  return std::string_view(value.string_value ? value.string_value : "",
                          value.string_len);
}

// The deepest nesting of dicts and lists the helpers here take: the host
// never shows a plugin a deeper value, nor takes one back
// (kMaxNestingDepth in ckpt/value.h). The same as kMaxJsonDepth.
inline constexpr size_t kMaxValueDepth = 512;

// True when the tree under `value` holds no CKPT_VALUE_ARRAY leaf and only
// tree kinds (dict, list, none, bool, int, double, string), nested at most
// kMaxValueDepth levels. Iterative.
inline bool is_plain_tree(const ckpt_value& value) {
  std::vector<std::pair<const ckpt_value*, size_t>> pending = {{&value, 0}};
  while (!pending.empty()) {
    auto [node, depth] = pending.back();
    pending.pop_back();
    switch (node->kind) {
      case CKPT_VALUE_NONE:
      case CKPT_VALUE_BOOL:
      case CKPT_VALUE_INT:
      case CKPT_VALUE_DOUBLE:
      case CKPT_VALUE_STRING:
        break;
      case CKPT_VALUE_DICT:
      case CKPT_VALUE_LIST:
        if (depth + 1 > kMaxValueDepth) return false;
        if (node->count > 0 && !node->children) return false;
        for (size_t i = 0; i < node->count; ++i) {
          pending.emplace_back(&node->children[i], depth + 1);
        }
        break;
      default:
        return false;
    }
  }
  return true;
}

// The payload of a CKPT_VALUE_SHARDED_ARRAY or CKPT_VALUE_SHARDED_SPEC
// (ABI 1.3), or null for another kind or a payload smaller than 1.3's.
inline const ckpt_sharded_array* sharded_of(const ckpt_value& value) {
  if (value.kind != CKPT_VALUE_SHARDED_ARRAY &&
      value.kind != CKPT_VALUE_SHARDED_SPEC) {
    return nullptr;
  }
  const auto* p = reinterpret_cast<const ckpt_sharded_array*>(value.object);
  if (!p || p->struct_size < CKPT_SHARDED_ARRAY_STRUCT_SIZE) return nullptr;
  return p;
}

// A value under construction by a plugin.
class OutValue {
 public:
  OutValue() = default;  // none
  OutValue(const OutValue&) = default;
  OutValue(OutValue&&) noexcept = default;
  OutValue& operator=(const OutValue&) = default;
  OutValue& operator=(OutValue&&) noexcept = default;
  // Without recursion, however deep the children nest.
  ~OutValue() {
    std::vector<OutValue> pending;
    try {
      take_nested_children(*this, pending);
      while (!pending.empty()) {
        OutValue next = std::move(pending.back());
        pending.pop_back();
        take_nested_children(next, pending);
      }
    } catch (...) {
      // No memory for the list: what is left is destroyed by recursion.
    }
  }
  static OutValue none() { return OutValue(); }
  static OutValue boolean(bool v) {
    OutValue out(CKPT_VALUE_BOOL);
    out.int_ = v ? 1 : 0;
    return out;
  }
  static OutValue integer(int64_t v) {
    OutValue out(CKPT_VALUE_INT);
    out.int_ = v;
    return out;
  }
  static OutValue real(double v) {
    OutValue out(CKPT_VALUE_DOUBLE);
    out.double_ = v;
    return out;
  }
  static OutValue string(std::string v) {
    OutValue out(CKPT_VALUE_STRING);
    out.text_ = std::move(v);
    return out;
  }
  static OutValue json(std::string text) {
    OutValue out(CKPT_VALUE_JSON);
    out.text_ = std::move(text);
    return out;
  }
  static OutValue dict() { return OutValue(CKPT_VALUE_DICT); }
  static OutValue list() { return OutValue(CKPT_VALUE_LIST); }
  // An array over `data` (C-contiguous), kept alive by `owner`.
  static OutValue array(ckpt_dtype dtype, std::vector<int64_t> shape,
                        void* data, std::shared_ptr<void> owner) {
    OutValue out(CKPT_VALUE_ARRAY);
    out.dtype_ = dtype;
    out.shape_ = std::move(shape);
    out.data_ = data;
    out.owner_ = std::move(owner);
    return out;
  }
  static OutValue array_spec(ckpt_dtype dtype, std::vector<int64_t> shape) {
    return typed(CKPT_VALUE_ARRAY_SPEC, dtype, std::move(shape));
  }
  // A sharded array (ABI 1.3) of `global_shape`; add its shards with
  // add_shard().
  static OutValue sharded_array(ckpt_dtype dtype,
                                std::vector<int64_t> global_shape) {
    return typed(CKPT_VALUE_SHARDED_ARRAY, dtype, std::move(global_shape));
  }
  // A sharded spec (ABI 1.3); add its boxes with add_box().
  static OutValue sharded_spec(ckpt_dtype dtype,
                               std::vector<int64_t> global_shape) {
    return typed(CKPT_VALUE_SHARDED_SPEC, dtype, std::move(global_shape));
  }
  // A shard of a sharded array: `array` (an array value) at `offset`.
  void add_shard(std::vector<int64_t> offset, OutValue array) {
    offsets_.push_back(std::move(offset));
    children_.push_back(std::move(array));
    keys_.emplace_back();
  }
  // A box of a sharded spec.
  void add_box(std::vector<int64_t> offset, std::vector<int64_t> shape) {
    add_shard(std::move(offset), array_spec(dtype_, std::move(shape)));
  }
  static OutValue placeholder() { return OutValue(CKPT_VALUE_PLACEHOLDER); }
  static OutValue scalar_spec(ckpt_value_kind leaf_kind) {
    OutValue out(CKPT_VALUE_SCALAR_SPEC);
    out.int_ = leaf_kind;
    return out;
  }
  // A protobuf message (or, with empty bytes and is_type, a message type).
  static OutValue proto(std::string full_name, std::string bytes,
                        std::string descriptor_set, bool is_type = false) {
    OutValue out(is_type ? CKPT_VALUE_PROTO_TYPE : CKPT_VALUE_PROTO);
    out.text_ = std::move(full_name);
    out.bytes_ = std::move(bytes);
    out.descriptors_ = std::move(descriptor_set);
    return out;
  }

  // A user object (see ckpt_object), kept alive by `object`.
  static OutValue object(std::string typestr, std::shared_ptr<void> object) {
    OutValue out(CKPT_VALUE_OBJECT);
    out.text_ = std::move(typestr);
    out.data_ = object.get();
    out.owner_ = std::move(object);
    return out;
  }

  // Appends a child to a dict (with key) or a list (key ignored).
  OutValue& add(std::string key, OutValue child) {
    keys_.push_back(std::move(key));
    children_.push_back(std::move(child));
    return children_.back();
  }
  OutValue& add(OutValue child) { return add(std::string(), std::move(child)); }
  // Room for `count` children of a dict or list, so that adding them
  // moves none.
  void reserve(size_t count) {
    keys_.reserve(count);
    children_.reserve(count);
  }

  ckpt_value_kind kind() const { return kind_; }

 private:
  friend class FrozenValue;
  explicit OutValue(ckpt_value_kind kind) : kind_(kind) {}
  // A value of `kind` with a dtype and a shape, no data.
  static OutValue typed(ckpt_value_kind kind, ckpt_dtype dtype,
                        std::vector<int64_t> shape) {
    OutValue out(kind);
    out.dtype_ = dtype;
    out.shape_ = std::move(shape);
    return out;
  }

  static void take_nested_children(OutValue& value,
                                   std::vector<OutValue>& pending) {
    for (OutValue& child : value.children_) {
      if (!child.children_.empty()) pending.push_back(std::move(child));
    }
  }

  ckpt_value_kind kind_ = CKPT_VALUE_NONE;
  int64_t int_ = 0;
  double double_ = 0;
  std::string text_;
  std::string bytes_;
  std::string descriptors_;
  std::vector<std::string> keys_;
  std::vector<OutValue> children_;
  ckpt_dtype dtype_ = CKPT_DTYPE_INVALID;
  std::vector<int64_t> shape_;
  std::vector<std::vector<int64_t>> offsets_;  // per shard
  void* data_ = nullptr;
  std::shared_ptr<void> owner_;
};

// The C view of an OutValue. Internal to freeze(): an sdk::Error
// (CKPT_ERROR_INVALID_ARGUMENT) when the value nests deeper than
// kMaxValueDepth. What the view points to is copied into its ValueArena
// (nodes, keys, text, shapes, protobuf bytes); of the OutValue tree it keeps
// only the owners of array and object memory, each distinct one once. The
// host holds this for as long as any loaded array lives, so it is kept
// small: a node and an array struct a leaf, and the leaf's key and shape.
class FrozenValue {
 public:
  static std::unique_ptr<FrozenValue> make(OutValue value) {
    return std::unique_ptr<FrozenValue>(new FrozenValue(std::move(value)));
  }
  FrozenValue(const FrozenValue&) = delete;
  FrozenValue& operator=(const FrozenValue&) = delete;
  const ckpt_value* root() const { return &root_; }

 private:
  explicit FrozenValue(OutValue value) {
    fill(value, root_, 0);
    // `value` goes now: only the owners of memory the view points to stay.
  }

  const ckpt_array* array_of(const OutValue& in) {
    ckpt_array& array = arena_.array();
    array.dtype = in.dtype_;
    array.tensor.data = in.data_;
    array.tensor.device = DLDevice{kDLCPU, 0};
    array.tensor.ndim = static_cast<int32_t>(in.shape_.size());
    array.tensor.shape = const_cast<int64_t*>(arena_.dims(in.shape_));
    array.tensor.dtype = dl_dtype(in.dtype_);
    arena_.keep(in.owner_);
    return &array;
  }

  // `depth`: the dicts and lists around `in`.
  void fill_container(const OutValue& in, ckpt_value& out, size_t depth) {
    if (depth > kMaxValueDepth) {
      throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                  "a value nested deeper than " +
                      std::to_string(kMaxValueDepth) +
                      " levels of dicts and lists");
    }
    const size_t n = in.children_.size();
    ckpt_value* children = arena_.nodes(n);
    const char** keys = in.kind_ == CKPT_VALUE_DICT ? arena_.keys(n) : nullptr;
    for (size_t i = 0; i < n; ++i) {
      if (keys) keys[i] = arena_.text(in.keys_[i]);
      fill(in.children_[i], children[i], depth);
    }
    out.count = n;
    out.children = children;
    out.keys = keys;
  }

  const ckpt_proto* proto_of(const OutValue& in) {
    ckpt_proto& proto = arena_.proto();
    proto.full_name = arena_.text(in.text_);
    const uint8_t* base = arena_.bytes(in.bytes_, in.descriptors_);
    proto.bytes = base;
    proto.bytes_len = in.bytes_.size();
    proto.descriptor_set = base + in.bytes_.size();
    proto.descriptor_set_len = in.descriptors_.size();
    return &proto;
  }

  const ckpt_sharded_array* sharded_of(const OutValue& in) {
    ckpt_sharded_array& sharded = arena_.sharded();
    sharded.dtype = in.dtype_;
    sharded.ndim = static_cast<int32_t>(in.shape_.size());
    sharded.global_shape = arena_.dims(in.shape_);
    const size_t n = in.children_.size();
    ckpt_shard* shards = arena_.shards(n);
    for (size_t i = 0; i < n; ++i) {
      const OutValue& element = in.children_[i];
      ckpt_shard& shard = shards[i];
      shard.offset = arena_.dims(in.offsets_[i]);
      if (in.kind_ == CKPT_VALUE_SHARDED_ARRAY) {
        shard.array = array_of(element);
        shard.shape = shard.array->tensor.shape;
      } else {
        shard.shape = arena_.dims(element.shape_);
      }
      shard.index = -1;
    }
    sharded.num_shards = n;
    sharded.shards = shards;
    return &sharded;
  }

  void fill(const OutValue& in, ckpt_value& out, size_t depth) {
    out = ckpt_value{};
    out.struct_size = CKPT_VALUE_STRUCT_SIZE;
    out.kind = in.kind_;
    out.int_value = in.int_;
    out.double_value = in.double_;
    switch (in.kind_) {
      case CKPT_VALUE_STRING:
      case CKPT_VALUE_JSON:
        out.string_value = arena_.text(in.text_);
        out.string_len = in.text_.size();
        break;
      case CKPT_VALUE_DICT:
      case CKPT_VALUE_LIST:
        fill_container(in, out, depth + 1);
        break;
      case CKPT_VALUE_ARRAY:
      case CKPT_VALUE_ARRAY_SPEC:
        out.array = array_of(in);
        break;
      case CKPT_VALUE_PROTO:
      case CKPT_VALUE_PROTO_TYPE:
        out.proto = proto_of(in);
        break;
      case CKPT_VALUE_SHARDED_ARRAY:
      case CKPT_VALUE_SHARDED_SPEC:
        // abi.h: a kind added after 1.0 keeps its payload at `object`.
        out.object = reinterpret_cast<const ckpt_object*>(sharded_of(in));
        break;
      case CKPT_VALUE_OBJECT: {
        ckpt_object& object = arena_.object();
        object.typestr = arena_.text(in.text_);
        object.pointer = in.data_;
        arena_.keep(in.owner_);
        out.object = &object;
        break;
      }
      default:
        break;
    }
  }

  ckpt_value root_{};
  ValueArena arena_;
};

// Hands `value` over as a ckpt_owned_value; the host frees it exactly once.
inline ckpt_owned_value freeze(OutValue value) {
  FrozenValue* frozen = FrozenValue::make(std::move(value)).release();
  ckpt_owned_value out{};
  out.struct_size = CKPT_OWNED_VALUE_STRUCT_SIZE;
  out.value = frozen->root();
  out.deleter = [](void* ctx) { delete static_cast<FrozenValue*>(ctx); };
  out.deleter_ctx = frozen;
  return out;
}

}  // namespace ckpt::sdk

#endif  // CKPT_SDK_VALUE_H_
