// Converting between ckpt::Value and the C ABI's ckpt_value.
#ifndef CKPT_SRC_VALUE_BRIDGE_H_
#define CKPT_SRC_VALUE_BRIDGE_H_

#include <ckpt/abi.h>
#include <ckpt/value.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace ckpt::internal {

// A read-only C view of a Value. Holds a copy of the Value (array memory is
// shared, not copied), so the view stays valid as long as this object does,
// whatever the caller does to its own Value afterwards -- except for the
// bytes of borrowed or mutable arrays, which a save snapshots in its
// blocking tier.
class CValueView {
 public:
  explicit CValueView(Value value);
  CValueView(const CValueView&) = delete;
  CValueView& operator=(const CValueView&) = delete;

  const ckpt_value* get() const { return &root_; }
  const Value& value() const { return value_; }

 private:
  void fill(const Value& in, ckpt_value& out);

  Value value_;
  ckpt_value root_{};
  // Deques: appending never moves the elements earlier pointers refer to.
  std::deque<std::vector<ckpt_value>> children_;
  std::deque<std::vector<const char*>> keys_;
  std::deque<ckpt_array> arrays_;
  std::deque<std::vector<int64_t>> shapes_;
  std::deque<ckpt_proto> protos_;
  std::deque<ckpt_object> objects_;
  std::deque<std::string> texts_;
};

// A deep conversion of a C value into a Value. Array leaves are not copied:
// they share `keepalive` (which owns the C value's memory) as their owner.
Value from_c_value(const ckpt_value& value,
                   const std::shared_ptr<void>& keepalive);

ckpt_dtype to_c_dtype(DType dtype);
DType from_c_dtype(ckpt_dtype dtype);  // InvalidArgumentError if invalid

}  // namespace ckpt::internal

#endif  // CKPT_SRC_VALUE_BRIDGE_H_
