// The array file's structure checksum: the XXH3-64 of every byte of the
// file outside the extents that hold contiguous elements (those have their
// own checksums), read with plain pread, not through HDF5.
#ifndef CKPT_PLUGINS_PYTREE_HDF5_STRUCTURE_CHECKSUM_H_
#define CKPT_PLUGINS_PYTREE_HDF5_STRUCTURE_CHECKSUM_H_

#include <cstdint>
#include <vector>

#include "hdf5/array_file.h"

namespace ckpt::pytree {

// Whether `extents` are non-empty, sorted, non-overlapping and inside a
// file of `size` bytes.
bool extents_valid(const std::vector<Extent>& extents, uint64_t size);

// Stores in `hash` the XXH3-64 of every byte of the `size`-byte file `fd`
// outside `extents` (which passed extents_valid), in file order. False
// with errno set (0 at an unexpected end of file) when a read fails.
bool hash_outside(int fd, uint64_t size, const std::vector<Extent>& extents,
                  uint64_t* hash);

}  // namespace ckpt::pytree

#endif  // CKPT_PLUGINS_PYTREE_HDF5_STRUCTURE_CHECKSUM_H_
