#include <ckpt/dlpack.h>
#include <ckpt/errors.h>
#include <ckpt/sdk/value.h>

#include <memory>

#include "value/value_bridge.h"

namespace ckpt {

namespace {

DType dtype_from_dl(DLDataType t, bool as_bool) {
  if (t.lanes != 1) {
    throw InvalidArgumentError(
        "DLPack tensors with lanes != 1 are not supported");
  }
  const int bits = t.bits;
  switch (t.code) {
    case kDLInt:
      if (bits == 8) return DType::kInt8;
      if (bits == 16) return DType::kInt16;
      if (bits == 32) return DType::kInt32;
      if (bits == 64) return DType::kInt64;
      break;
    case kDLUInt:
      if (bits == 8) return as_bool ? DType::kBool : DType::kUInt8;
      if (bits == 16) return DType::kUInt16;
      if (bits == 32) return DType::kUInt32;
      if (bits == 64) return DType::kUInt64;
      break;
    case kDLFloat:
      if (bits == 16) return DType::kFloat16;
      if (bits == 32) return DType::kFloat32;
      if (bits == 64) return DType::kFloat64;
      break;
    case kDLBfloat:
      if (bits == 16) return DType::kBFloat16;
      break;
    case kDLComplex:
      if (bits == 64) return DType::kComplex64;
      if (bits == 128) return DType::kComplex128;
      break;
    default:
      break;
  }
  throw InvalidArgumentError("DLPack dtype (code " + std::to_string(t.code) +
                             ", " + std::to_string(bits) +
                             " bits) has no ckpt dtype");
}

// What a DLManagedTensor made by to_dlpack owns.
struct Export {
  Array array;
  Shape shape;
  std::vector<int64_t> strides;
  DLManagedTensor tensor{};
};

}  // namespace

Array from_dlpack(DLManagedTensor* tensor, bool as_bool, bool immutable) {
  if (!tensor) throw InvalidArgumentError("from_dlpack: null tensor");
  std::shared_ptr<DLManagedTensor> owner(tensor, [](DLManagedTensor* t) {
    if (t->deleter) t->deleter(t);
  });
  const DLTensor& t = tensor->dl_tensor;
  if (t.device.device_type != kDLCPU) {
    throw InvalidArgumentError("from_dlpack: only CPU tensors (device type " +
                               std::to_string(t.device.device_type) + ")");
  }
  Shape shape(t.shape, t.shape + t.ndim);
  std::vector<int64_t> strides;
  if (t.strides) strides.assign(t.strides, t.strides + t.ndim);
  void* data = static_cast<char*>(t.data) + t.byte_offset;
  return Array::share(dtype_from_dl(t.dtype, as_bool), std::move(shape), data,
                      owner, immutable, std::move(strides));
}

DLManagedTensor* to_dlpack(const Array& array) {
  auto* e = new Export{array, array.shape(), array.strides(), {}};
  DLTensor& t = e->tensor.dl_tensor;
  t.data = array.data();
  t.device = DLDevice{kDLCPU, 0};
  t.ndim = static_cast<int32_t>(e->shape.size());
  t.dtype = sdk::dl_dtype(internal::to_c_dtype(array.dtype()));
  t.shape = e->shape.data();
  t.strides = e->strides.empty() ? nullptr : e->strides.data();
  t.byte_offset = 0;
  e->tensor.manager_ctx = e;
  e->tensor.deleter = [](DLManagedTensor* self) {
    delete static_cast<Export*>(self->manager_ctx);
  };
  return &e->tensor;
}

Shard shard_from_dlpack(Shape offset, DLManagedTensor* tensor, bool as_bool,
                        bool immutable) {
  return Shard{std::move(offset), from_dlpack(tensor, as_bool, immutable)};
}

}  // namespace ckpt
