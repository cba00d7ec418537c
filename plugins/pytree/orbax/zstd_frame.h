// zstd decompression of data read from disk: one frame, its output bounded
// before any memory is spent on it.
#ifndef CKPT_PLUGINS_PYTREE_ORBAX_ZSTD_FRAME_H_
#define CKPT_PLUGINS_PYTREE_ORBAX_ZSTD_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ckpt::pytree::orbax {

// Decompresses the single zstd frame `compressed` (nothing after it) into
// at most `max_bytes` bytes; the output grows only as the data really
// decodes, so a small input claiming a huge size costs no memory. Throws
// Damaged saying what is wrong.
std::string zstd_decompress(std::string_view compressed, uint64_t max_bytes);

// The same into `size` bytes at `out`: Damaged unless it decodes to exactly
// that many.
void zstd_decompress_into(std::string_view compressed, void* out, size_t size);

}  // namespace ckpt::pytree::orbax

#endif  // CKPT_PLUGINS_PYTREE_ORBAX_ZSTD_FRAME_H_
