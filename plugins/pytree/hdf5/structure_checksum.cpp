#include "hdf5/structure_checksum.h"

#include <ckpt/sdk/files.h>
#include <xxhash.h>
#if defined(__x86_64__)
// XXH3 with the widest vector unit the CPU has (twice the speed of the
// SSE2 build on AVX2 machines); the same hashes.
#include <xxh_x86dispatch.h>
#endif

#include <algorithm>
#include <memory>
#include <new>

namespace ckpt::pytree {

namespace {

// The structure checksum reads the file in windows of this size; a data
// extent at least kSkipExtent long ends a window (it is skipped, not read).
constexpr uint64_t kHashWindow = 4u << 20;
constexpr uint64_t kSkipExtent = 64u << 10;

}  // namespace

bool extents_valid(const std::vector<Extent>& extents, uint64_t size) {
  uint64_t end = 0;
  for (const Extent& e : extents) {
    if (e.length == 0 || e.offset < end || e.offset > size ||
        e.length > size - e.offset) {
      return false;
    }
    end = e.offset + e.length;
  }
  return true;
}

// Reads windows of up to kHashWindow bytes; small extents inside a window
// are read with it (cheaper than another pread), large ones are skipped.
bool hash_outside(int fd, uint64_t size, const std::vector<Extent>& extents,
                  uint64_t* hash) {
  std::unique_ptr<XXH3_state_t, XXH_errorcode (*)(XXH3_state_t*)> state(
      XXH3_createState(), XXH3_freeState);
  if (!state) throw std::bad_alloc();
  XXH3_64bits_reset(state.get());
  std::unique_ptr<char[]> buffer(
      new char[static_cast<size_t>(std::min(size, kHashWindow)) + 1]);
  const size_t n = extents.size();
  uint64_t pos = 0;
  size_t e = 0;
  while (pos < size) {
    while (e < n && extents[e].offset + extents[e].length <= pos) ++e;
    if (e < n && extents[e].offset <= pos) {
      pos = extents[e].offset + extents[e].length;
      ++e;
      continue;
    }
    // pos is outside every extent: read up to a window, stopping at the
    // first large extent.
    uint64_t end = std::min(size, pos + kHashWindow);
    for (size_t k = e; k < n && extents[k].offset < end; ++k) {
      if (extents[k].length >= kSkipExtent) {
        end = extents[k].offset;
        break;
      }
    }
    if (!ckpt::sdk::pread_full(fd, buffer.get(), end - pos, pos)) return false;
    uint64_t cur = pos;
    for (size_t k = e; k < n && extents[k].offset < end; ++k) {
      XXH3_64bits_update(state.get(), buffer.get() + (cur - pos),
                         static_cast<size_t>(extents[k].offset - cur));
      cur = std::min(end, extents[k].offset + extents[k].length);
    }
    if (cur < end) {
      XXH3_64bits_update(state.get(), buffer.get() + (cur - pos),
                         static_cast<size_t>(end - cur));
    }
    pos = end;
  }
  *hash = XXH3_64bits_digest(state.get());
  return true;
}

}  // namespace ckpt::pytree
