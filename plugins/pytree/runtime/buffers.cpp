#include "runtime/buffers.h"

#include <sys/mman.h>

#include <cstdlib>
#include <new>

namespace ckpt::pytree {

namespace {
constexpr uint64_t kHugePage = 2u << 20;
constexpr uint64_t kHugeThreshold = 4u << 20;
}  // namespace

std::shared_ptr<void> allocate_buffer(uint64_t nbytes) {
  void* p = nullptr;
  if (nbytes >= kHugeThreshold) {
    uint64_t rounded = (nbytes + kHugePage - 1) / kHugePage * kHugePage;
    if (posix_memalign(&p, kHugePage, static_cast<size_t>(rounded)) != 0) {
      throw std::bad_alloc();
    }
    ::madvise(p, static_cast<size_t>(rounded), MADV_HUGEPAGE);  // a hint only
  } else {
    p = std::malloc(static_cast<size_t>(nbytes == 0 ? 1 : nbytes));
    if (!p) throw std::bad_alloc();
  }
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}

}  // namespace ckpt::pytree
