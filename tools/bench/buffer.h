// Fresh memory for the raw limit of the benchmarks, as ckpt allocates its
// own: 2 MiB aligned and backed by transparent huge pages where the kernel
// allows (`huge`), or plain malloc; the limit takes the better of the two.
#ifndef CKPT_TOOLS_BENCH_BUFFER_H_
#define CKPT_TOOLS_BENCH_BUFFER_H_

#include <sys/mman.h>

#include <cstdlib>
#include <new>

struct Buffer {
  explicit Buffer(size_t n, bool huge = true) {
    if (n < (4u << 20) || !huge) {
      data = std::malloc(n ? n : 1);
      if (!data) throw std::bad_alloc();
      return;
    }
    size_t rounded = (n + (2u << 20) - 1) / (2u << 20) * (2u << 20);
    if (posix_memalign(&data, 2u << 20, rounded) != 0) throw std::bad_alloc();
    ::madvise(data, rounded, MADV_HUGEPAGE);
  }
  ~Buffer() { std::free(data); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void* data = nullptr;
};

#endif  // CKPT_TOOLS_BENCH_BUFFER_H_
