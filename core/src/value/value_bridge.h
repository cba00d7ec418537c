// Converting between ckpt::Value and the C ABI's ckpt_value.
#ifndef CKPT_SRC_VALUE_VALUE_BRIDGE_H_
#define CKPT_SRC_VALUE_VALUE_BRIDGE_H_

#include <ckpt/abi.h>
#include <ckpt/sdk/value_arena.h>
#include <ckpt/value.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt::internal {

// A read-only C view of a Value; InvalidArgumentError when its dicts and
// lists nest deeper than kMaxNestingDepth (every plugin walks the view by
// recursion). Self-contained: it copies what it points to (keys, strings,
// shapes, protobuf bytes) into its sdk::ValueArena and keeps the owners of
// array and object memory, never the Value itself, so it stays valid as
// long as this object does, whatever the caller does to its own Value
// afterwards -- except for the bytes of borrowed or mutable arrays, which a
// save snapshots in its blocking tier. With `all_immutable`, every array is
// shown flagged CKPT_ARRAY_IMMUTABLE (a save whose caller waits: nothing
// changes the arrays until it ends).
class CValueView {
 public:
  explicit CValueView(const Value& value, bool all_immutable = false);
  CValueView(const CValueView&) = delete;
  CValueView& operator=(const CValueView&) = delete;

  const ckpt_value* get() const { return &root_; }
  // The lowest ABI minor a plugin must speak to be shown this view: 1 when
  // it holds something ABI 1.1 added (an array spec of unknown dtype), 3
  // for a sharded array or spec (1.3).
  uint32_t required_minor() const { return required_minor_; }

 private:
  // `depth`: the dicts and lists around `in`.
  void fill(const Value& in, ckpt_value& out, size_t depth);
  void fill_container(const Value& in, ckpt_value& out,
                      size_t depth);            // dict or list
  const ckpt_array& array_of(const Value& in);  // array or array spec
  const ckpt_array& array_of(const Array& a);
  // A sharded array or sharded spec; InvalidArgumentError for boxes whose
  // rank is not the global shape's.
  const ckpt_sharded_array& sharded_of(const Value& in);
  const ckpt_proto& proto_of(const ProtoMessage& message);

  bool all_immutable_;
  ckpt_value root_{};
  uint32_t required_minor_ = 0;
  sdk::ValueArena arena_;
};

// While one lives, every plugin call on this thread about that very Value
// object shares one CValueView of it: resolution asks each candidate
// handler about the same value, and the chosen one then saves or loads it.
// Several may be active on one thread, and end in any order.
class SharedCValueView {
 public:
  // `all_immutable`: as CValueView's, for the view made of `value`.
  explicit SharedCValueView(const Value& value, bool all_immutable = false);
  ~SharedCValueView();
  SharedCValueView(const SharedCValueView&) = delete;
  SharedCValueView& operator=(const SharedCValueView&) = delete;

  // The shared view when a SharedCValueView of `value` (the same object)
  // is active on this thread, else a new view.
  static std::shared_ptr<const CValueView> of(const Value& value);

 private:
  const Value* value_;
  bool all_immutable_;
  std::shared_ptr<const CValueView> view_;  // made on first use
  SharedCValueView* outer_;
};

// A deep conversion of a C value into a Value. Array leaves are not copied:
// they share `keepalive` (which owns the C value's memory) as their owner.
// PluginError when dicts and lists (or a JSON text's objects and arrays)
// nest deeper than kMaxNestingDepth, as a cyclic value does.
Value from_c_value(const ckpt_value& value,
                   const std::shared_ptr<void>& keepalive);

ckpt_dtype to_c_dtype(DType dtype);
DType from_c_dtype(ckpt_dtype dtype);  // InvalidArgumentError if invalid

}  // namespace ckpt::internal

#endif  // CKPT_SRC_VALUE_VALUE_BRIDGE_H_
