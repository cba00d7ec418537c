// ckpt/dlpack.h -- zero-copy exchange of arrays with other C++ tensor
// libraries (libtorch, TVM, ...) through DLPack 0.6.
//
//   DLManagedTensor* t = at::toDLPack(tensor);       // libtorch
//   ckpt::Array a = ckpt::from_dlpack(t);             // shares its memory
//   DLManagedTensor* back = ckpt::to_dlpack(loaded);  // and the other way
//   at::Tensor restored = at::fromDLPack(back);
#ifndef CKPT_DLPACK_H_
#define CKPT_DLPACK_H_

#include <ckpt/export.h>
#include <ckpt/value.h>
#include <dlpack/dlpack.h>

namespace ckpt {

// Takes ownership of `tensor`: its deleter runs once, when the last Array
// sharing its memory is gone (also when this call throws). Only CPU
// tensors. DLPack 0.6 has no bool type: 8-bit unsigned data is uint8 unless
// `as_bool`. `immutable`: the caller promises the tensor's memory never
// changes while the Array lives (see Array::share), so an async save
// writes it without a snapshot copy. InvalidArgumentError for other
// devices, lanes != 1, or a dtype ckpt does not have.
CKPT_API Array from_dlpack(DLManagedTensor* tensor, bool as_bool = false,
                           bool immutable = false);

// A piece of a sharded array (ShardedArray) from this process's tensor of
// it: the elements of the box at `offset` in the global index space, as
// from_dlpack takes them.
//
//   ckpt::ShardedArray w{ckpt::DType::kFloat32, {2048, 128}, {}};
//   w.shards.push_back(ckpt::shard_from_dlpack({rank * 512, 0},
//                                              at::toDLPack(local_rows)));
CKPT_API Shard shard_from_dlpack(Shape offset, DLManagedTensor* tensor,
                                 bool as_bool = false, bool immutable = false);

// A DLManagedTensor viewing `array`'s memory (kept alive until the
// consumer calls the tensor's deleter, exactly once). Borrowed arrays are
// not copied: their memory must outlive the tensor.
CKPT_API DLManagedTensor* to_dlpack(const Array& array);

}  // namespace ckpt

#endif  // CKPT_DLPACK_H_
