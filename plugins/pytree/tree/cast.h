// Element conversion between dtypes, and fitting an array into another
// shape: the work a load into an abstract tree does after reading. Pure
// memory work: never called under the HDF5 lock.
#ifndef CKPT_PLUGINS_PYTREE_TREE_CAST_H_
#define CKPT_PLUGINS_PYTREE_TREE_CAST_H_

#include <ckpt/abi.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ckpt::pytree {

// Converts `count` elements from `src` (dtype `from`) into `dst` (dtype
// `to`) as NumPy's astype would: integers between each other through
// int64/uint64 with wrap-around, floats rounded to nearest even, complex to
// real keeps the real part, anything to bool is "non-zero".
// REQUIRES: both dtypes valid; src and dst do not overlap.
void cast_elements(ckpt_dtype from, const void* src, ckpt_dtype to, void* dst,
                   size_t count);

// Copies the C-contiguous array `src` of shape `from` into `dst` of shape
// `to` (same rank): the overlapping corner is copied, the rest of `dst` is
// zero (padding), and what lies outside `to` is dropped (truncation).
void fit_to_shape(const void* src, const std::vector<int64_t>& from, void* dst,
                  const std::vector<int64_t>& to, size_t item_size);

// Copies the elements where the box at `from_offset` of shape `from_shape`
// (its elements at `src`, C order) and the box at `to_offset` of shape
// `to_shape` (at `dst`) meet, from one to the other; `item_size` bytes
// each. Offsets are in one index space of the boxes' rank.
void copy_overlap(const void* src, const std::vector<int64_t>& from_offset,
                  const std::vector<int64_t>& from_shape, void* dst,
                  const std::vector<int64_t>& to_offset,
                  const std::vector<int64_t>& to_shape, size_t item_size);

// Number of elements of `shape` (1 for a 0-d array).
// REQUIRES: `shape` passed checked_size().
uint64_t element_count(const std::vector<int64_t>& shape);

// The element count and byte count of an array of `shape` with
// `item_size`-byte elements. False when a dimension is negative or either
// count exceeds INT64_MAX: such a shape can never be allocated or stored.
bool checked_size(const std::vector<int64_t>& shape, uint64_t item_size,
                  uint64_t* count, uint64_t* nbytes);

}  // namespace ckpt::pytree

#endif  // CKPT_PLUGINS_PYTREE_TREE_CAST_H_
