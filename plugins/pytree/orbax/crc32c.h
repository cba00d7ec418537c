// CRC-32C (Castagnoli), the checksum OCDBT puts at the end of its manifests
// and nodes and zarr's crc32c codec appends to shard indexes.
#ifndef CKPT_PLUGINS_PYTREE_ORBAX_CRC32C_H_
#define CKPT_PLUGINS_PYTREE_ORBAX_CRC32C_H_

#include <cstddef>
#include <cstdint>

namespace ckpt::pytree {

// The CRC-32C of `size` bytes at `data` (with the usual pre- and
// post-inversion: crc32c("123456789") == 0xe3069283). Uses the CPU's CRC
// instruction when it has one (SSE 4.2).
uint32_t crc32c(const void* data, size_t size);

}  // namespace ckpt::pytree

#endif  // CKPT_PLUGINS_PYTREE_ORBAX_CRC32C_H_
