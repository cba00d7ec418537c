#include <ckpt/sdk/dtype.h>
#include <ckpt/sdk/json.h>
#include <ckpt/value.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <numeric>
#include <string_view>
#include <unordered_set>

namespace ckpt {

namespace {

const sdk::DTypeInfo& info(DType dtype) {
  const sdk::DTypeInfo* d = sdk::dtype_info(static_cast<ckpt_dtype>(dtype));
  if (!d) {
    throw InvalidArgumentError("invalid dtype " +
                               std::to_string(static_cast<int>(dtype)));
  }
  return *d;
}

std::string shape_string(const Shape& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

}  // namespace

size_t dtype_size(DType dtype) { return info(dtype).size; }
std::string_view dtype_name(DType dtype) { return info(dtype).name; }
std::string_view dtype_name(const std::optional<DType>& dtype) {
  return dtype ? dtype_name(*dtype) : "unknown";
}

DType dtype_from_name(std::string_view name) {
  const sdk::DTypeInfo* d = sdk::dtype_info(name);
  if (!d) {
    throw InvalidArgumentError("unknown dtype '" + std::string(name) + "'");
  }
  return static_cast<DType>(d->dtype);
}

// ------------------------------------------------------------------ Array

namespace {
void check_shape(const Shape& shape) {
  for (int64_t d : shape) {
    if (d < 0) {
      throw InvalidArgumentError("negative dimension in shape " +
                                 shape_string(shape));
    }
  }
}
}  // namespace

Array Array::zeros(DType dtype, Shape shape) {
  check_shape(shape);
  Array a;
  a.dtype_ = dtype;
  a.shape_ = std::move(shape);
  size_t bytes = a.nbytes();
  std::shared_ptr<char[]> memory(new char[bytes ? bytes : 1]());
  a.data_ = memory.get();
  a.owner_ = std::move(memory);
  return a;
}

Array Array::copy(DType dtype, Shape shape, const void* data) {
  Array a = zeros(dtype, std::move(shape));
  if (a.nbytes()) std::memcpy(a.data_, data, a.nbytes());
  return a;
}

Array Array::borrow(DType dtype, Shape shape, void* data,
                    std::vector<int64_t> strides) {
  return share(dtype, std::move(shape), data, nullptr, false,
               std::move(strides));
}

Array Array::share(DType dtype, Shape shape, void* data,
                   std::shared_ptr<void> owner, bool immutable,
                   std::vector<int64_t> strides) {
  check_shape(shape);
  if (!strides.empty() && strides.size() != shape.size()) {
    throw InvalidArgumentError("strides " + shape_string(strides) +
                               " do not match shape " + shape_string(shape));
  }
  Array a;
  a.dtype_ = dtype;
  a.shape_ = std::move(shape);
  a.strides_ = std::move(strides);
  a.data_ = data;
  a.owner_ = std::move(owner);
  a.immutable_ = immutable;
  if (a.is_contiguous()) a.strides_.clear();
  return a;
}

int64_t Array::num_elements() const {
  return std::accumulate(shape_.begin(), shape_.end(), int64_t{1},
                         std::multiplies<int64_t>());
}

bool Array::is_contiguous() const {
  if (strides_.empty()) return true;
  int64_t expected = 1;
  for (size_t i = shape_.size(); i-- > 0;) {
    if (shape_[i] != 1 && strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

Array Array::contiguous_copy() const {
  Array out = zeros(dtype_, shape_);
  const size_t item = dtype_size(dtype_);
  const int64_t n = num_elements();
  if (n == 0) return out;
  if (is_contiguous()) {
    std::memcpy(out.data_, data_, nbytes());
    return out;
  }
  // Walk the source in C order with an index counter.
  std::vector<int64_t> index(shape_.size(), 0);
  const char* src = static_cast<const char*>(data_);
  char* dst = static_cast<char*>(out.data_);
  for (int64_t k = 0; k < n; ++k) {
    int64_t offset = 0;
    for (size_t d = 0; d < shape_.size(); ++d) offset += index[d] * strides_[d];
    std::memcpy(dst + k * item, src + offset * static_cast<int64_t>(item),
                item);
    for (size_t d = shape_.size(); d-- > 0;) {
      if (++index[d] < shape_[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

bool Array::operator==(const Array& other) const {
  if (dtype_ != other.dtype_ || shape_ != other.shape_) return false;
  Array a = is_contiguous() ? *this : contiguous_copy();
  Array b = other.is_contiguous() ? other : other.contiguous_copy();
  return nbytes() == 0 || std::memcmp(a.data_, b.data_, nbytes()) == 0;
}

// ------------------------------------------------------------------ Value

static_assert(kMaxNestingDepth == sdk::kMaxJsonDepth,
              "one nesting limit for values and for JSON read from disk");

// Copies, moves, comparisons and destruction of a Value walk its tree with
// an explicit stack, never by recursion: a tree nested 100,000 deep (built
// by a program, or by a hostile plugin) must not overflow the stack.

Value::Value(const Value& other) : kind_(other.kind_) {
  if (!other.is_tree_container()) {
    data_ = other.data_;
    return;
  }
  // Each container is copied as a row of empty children, filled later.
  std::vector<std::pair<const Value*, Value*>> pending = {{&other, this}};
  while (!pending.empty()) {
    auto [from, to] = pending.back();
    pending.pop_back();
    to->kind_ = from->kind_;
    if (from->kind_ == Kind::kDict) {
      const Dict& source = std::get<Dict>(from->data_);
      Dict& copy = to->data_.emplace<Dict>();
      copy.reserve(source.size());
      for (const auto& item : source) copy.emplace_back(item.first, Value());
      for (size_t i = 0; i < source.size(); ++i) {
        pending.emplace_back(&source[i].second, &copy[i].second);
      }
    } else if (from->kind_ == Kind::kList) {
      const List& source = std::get<List>(from->data_);
      List& copy = to->data_.emplace<List>(source.size());
      for (size_t i = 0; i < source.size(); ++i) {
        pending.emplace_back(&source[i], &copy[i]);
      }
    } else {
      to->data_ = from->data_;
    }
  }
}

Value::Value(Value&& other) noexcept
    : kind_(other.kind_), data_(std::move(other.data_)) {}

Value& Value::operator=(const Value& other) {
  if (this != &other) *this = Value(other);
  return *this;
}

Value& Value::operator=(Value&& other) noexcept {
  if (this != &other) {
    // Taken out first: `other` may be a part of what *this held, which
    // `taken` destroys once it has been swapped in.
    Value taken(std::move(other));
    std::swap(kind_, taken.kind_);
    data_.swap(taken.data_);
  }
  return *this;
}

namespace {

// Moves the children of `value` that are non-empty dicts or lists to
// `pending`.
void take_nested_children(Value& value, std::vector<Value>& pending) {
  auto take = [&pending](Value& child) {
    if (child.is_tree_container() && child.size() > 0) {
      pending.push_back(std::move(child));
    }
  };
  if (value.kind() == Value::Kind::kDict) {
    for (auto& item : value.as_dict()) take(item.second);
  } else if (value.kind() == Value::Kind::kList) {
    for (Value& child : value.as_list()) take(child);
  }
}

}  // namespace

Value::~Value() {
  if (!is_tree_container()) return;
  // Nested containers are moved to a flat list and destroyed one at a
  // time, each once its own nested containers were moved out: no
  // destructor reaches further than the children of its Value.
  std::vector<Value> pending;
  try {
    take_nested_children(*this, pending);
    while (!pending.empty()) {
      Value next = std::move(pending.back());
      pending.pop_back();
      take_nested_children(next, pending);
    }
  } catch (...) {
    // No memory for the list: what is left is destroyed by recursion.
  }
}

Value Value::dict(std::initializer_list<std::pair<std::string, Value>> items) {
  return dict(Dict(items.begin(), items.end()));
}

Value Value::dict(Dict items) {
  // Linear: a plugin may return a dict of a million keys.
  std::unordered_set<std::string_view> seen;
  seen.reserve(items.size());
  for (const auto& item : items) {
    if (!seen.insert(item.first).second) {
      throw InvalidArgumentError("duplicate dict key '" + item.first + "'");
    }
  }
  return Value(Kind::kDict, std::move(items));
}

Value Value::list(std::initializer_list<Value> items) {
  return list(List(items));
}
Value Value::list(List items) { return Value(Kind::kList, std::move(items)); }
Value Value::json(nlohmann::json document) {
  // Copying, comparing and printing a document recurse once per level.
  if (nesting_depth(document) > kMaxNestingDepth) {
    throw InvalidArgumentError("JSON document nested deeper than " +
                               std::to_string(kMaxNestingDepth) + " levels");
  }
  return Value(Kind::kJson, std::move(document));
}
Value Value::proto(ProtoMessage message) {
  return Value(Kind::kProto, std::move(message));
}
Value Value::proto_type(ProtoMessage type) {
  type.bytes.clear();
  return Value(Kind::kProtoType, std::move(type));
}
Value Value::stateful(std::shared_ptr<StatefulCheckpointable> object) {
  if (!object) throw InvalidArgumentError("Value::stateful: null object");
  return Value(Kind::kStateful, std::move(object));
}
Value Value::object(std::string typestr, std::shared_ptr<void> object) {
  return Value(Kind::kObject,
               UserObject{std::move(typestr), std::move(object)});
}
Value Value::scalar_spec(Kind leaf_kind) {
  if (leaf_kind != Kind::kBool && leaf_kind != Kind::kInt &&
      leaf_kind != Kind::kDouble && leaf_kind != Kind::kString) {
    throw InvalidArgumentError("scalar_spec takes bool, int, double or string");
  }
  return Value(Kind::kScalarSpec, leaf_kind);
}
Value Value::placeholder() { return Value(Kind::kPlaceholder, {}); }
Value Value::json_type() { return Value(Kind::kJsonType, {}); }

void Value::wrong_kind(const char* wanted) const {
  throw InvalidArgumentError(std::string("expected ") + wanted + ", got " +
                             describe(*this));
}

bool Value::as_bool() const {
  if (kind_ != Kind::kBool) wrong_kind("bool");
  return std::get<bool>(data_);
}
int64_t Value::as_int() const {
  if (kind_ != Kind::kInt) wrong_kind("int");
  return std::get<int64_t>(data_);
}
double Value::as_double() const {
  if (kind_ == Kind::kInt) return static_cast<double>(std::get<int64_t>(data_));
  if (kind_ != Kind::kDouble) wrong_kind("double");
  return std::get<double>(data_);
}
const std::string& Value::as_string() const {
  if (kind_ != Kind::kString) wrong_kind("string");
  return std::get<std::string>(data_);
}
const Array& Value::as_array() const {
  if (kind_ != Kind::kArray) wrong_kind("array");
  return std::get<Array>(data_);
}
const Value::Dict& Value::as_dict() const {
  if (kind_ != Kind::kDict) wrong_kind("dict");
  return std::get<Dict>(data_);
}
Value::Dict& Value::as_dict() {
  if (kind_ != Kind::kDict) wrong_kind("dict");
  return std::get<Dict>(data_);
}
const Value::List& Value::as_list() const {
  if (kind_ != Kind::kList) wrong_kind("list");
  return std::get<List>(data_);
}
Value::List& Value::as_list() {
  if (kind_ != Kind::kList) wrong_kind("list");
  return std::get<List>(data_);
}
const nlohmann::json& Value::as_json() const {
  if (kind_ != Kind::kJson) wrong_kind("JSON document");
  return std::get<nlohmann::json>(data_);
}
const ProtoMessage& Value::as_proto() const {
  if (kind_ != Kind::kProto && kind_ != Kind::kProtoType) {
    wrong_kind("protobuf message");
  }
  return std::get<ProtoMessage>(data_);
}
const UserObject& Value::as_object() const {
  if (kind_ != Kind::kObject) wrong_kind("object");
  return std::get<UserObject>(data_);
}
const std::shared_ptr<StatefulCheckpointable>& Value::as_stateful() const {
  if (kind_ != Kind::kStateful) wrong_kind("stateful checkpointable");
  return std::get<std::shared_ptr<StatefulCheckpointable>>(data_);
}
const ArraySpec& Value::as_array_spec() const {
  if (kind_ != Kind::kArraySpec) wrong_kind("array spec");
  return std::get<ArraySpec>(data_);
}
const ShardedArray& Value::as_sharded_array() const {
  if (kind_ != Kind::kShardedArray) wrong_kind("sharded array");
  return std::get<ShardedArray>(data_);
}
ShardedArray& Value::as_sharded_array() {
  if (kind_ != Kind::kShardedArray) wrong_kind("sharded array");
  return std::get<ShardedArray>(data_);
}
const ShardedSpec& Value::as_sharded_spec() const {
  if (kind_ != Kind::kShardedSpec) wrong_kind("sharded spec");
  return std::get<ShardedSpec>(data_);
}
Value::Kind Value::scalar_kind() const {
  if (kind_ != Kind::kScalarSpec) wrong_kind("scalar spec");
  return std::get<Kind>(data_);
}

const Value* Value::find(std::string_view key) const {
  for (const auto& [k, v] : as_dict()) {
    if (k == key) return &v;
  }
  return nullptr;
}

const Value& Value::at(std::string_view key) const {
  const Value* v = find(key);
  if (!v) throw NotFoundError("no key '" + std::string(key) + "' in dict");
  return *v;
}

Value& Value::set(std::string key, Value value) {
  Dict& d = as_dict();
  for (auto& [k, v] : d) {
    if (k == key) return v = std::move(value);
  }
  d.emplace_back(std::move(key), std::move(value));
  return d.back().second;
}

void Value::push_back(Value value) { as_list().push_back(std::move(value)); }

size_t Value::size() const {
  if (kind_ == Kind::kDict) return as_dict().size();
  if (kind_ == Kind::kList) return as_list().size();
  return 0;
}

bool Value::operator==(const Value& other) const {
  std::vector<std::pair<const Value*, const Value*>> pending = {{this, &other}};
  while (!pending.empty()) {
    auto [a, b] = pending.back();
    pending.pop_back();
    if (a->kind_ != b->kind_) return false;
    if (a->kind_ == Kind::kDict) {
      const Dict& x = std::get<Dict>(a->data_);
      const Dict& y = std::get<Dict>(b->data_);
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (x[i].first != y[i].first) return false;
        pending.emplace_back(&x[i].second, &y[i].second);
      }
    } else if (a->kind_ == Kind::kList) {
      const List& x = std::get<List>(a->data_);
      const List& y = std::get<List>(b->data_);
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        pending.emplace_back(&x[i], &y[i]);
      }
    } else if (!(a->data_ == b->data_)) {
      return false;
    }
  }
  return true;
}

size_t nesting_depth(const Value& value) {
  size_t deepest = 0;
  std::vector<std::pair<const Value*, size_t>> pending = {{&value, 0}};
  while (!pending.empty()) {
    auto [node, depth] = pending.back();
    pending.pop_back();
    if (!node->is_tree_container()) continue;
    deepest = std::max(deepest, ++depth);
    if (node->kind() == Value::Kind::kDict) {
      for (const auto& item : node->as_dict()) {
        pending.emplace_back(&item.second, depth);
      }
    } else {
      for (const Value& child : node->as_list()) {
        pending.emplace_back(&child, depth);
      }
    }
  }
  return deepest;
}

size_t nesting_depth(const nlohmann::json& document) {
  size_t deepest = 0;
  std::vector<std::pair<const nlohmann::json*, size_t>> pending = {
      {&document, 0}};
  while (!pending.empty()) {
    auto [node, depth] = pending.back();
    pending.pop_back();
    if (!node->is_structured()) continue;
    deepest = std::max(deepest, ++depth);
    for (const nlohmann::json& child : *node)
      pending.emplace_back(&child, depth);
  }
  return deepest;
}

std::vector<Box> split_evenly(const Shape& global_shape, size_t dim,
                              int count) {
  if (dim >= global_shape.size() || count < 1) {
    throw InvalidArgumentError("split_evenly: dimension " +
                               std::to_string(dim) + " of shape " +
                               shape_string(global_shape) + " into " +
                               std::to_string(count) + " boxes");
  }
  std::vector<Box> boxes;
  const int64_t n = global_shape[dim];
  int64_t start = 0;
  for (int i = 0; i < count; ++i) {
    const int64_t extent = n / count + (i < n % count ? 1 : 0);
    Box box{Shape(global_shape.size(), 0), global_shape};
    box.offset[dim] = start;
    box.shape[dim] = extent;
    boxes.push_back(std::move(box));
    start += extent;
  }
  return boxes;
}

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
             shape_string(value.as_array().shape());
    case K::kArraySpec:
      return std::string(dtype_name(value.as_array_spec().dtype)) +
             " array spec " + shape_string(value.as_array_spec().shape);
    case K::kShardedArray: {
      const ShardedArray& a = value.as_sharded_array();
      return std::string(dtype_name(a.dtype)) + " sharded array " +
             shape_string(a.global_shape) + " (" +
             std::to_string(a.shards.size()) + " local shards)";
    }
    case K::kShardedSpec: {
      const ShardedSpec& s = value.as_sharded_spec();
      return std::string(dtype_name(s.dtype)) + " sharded spec " +
             shape_string(s.global_shape) + " (" +
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
