// Values: trees of leaves and containers (ckpt/value.h).
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

}  // namespace ckpt
