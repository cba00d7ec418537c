// Memory for the raw baselines of the benchmarks: each kind is one way a
// program can get the bytes into memory it owns, and the baselines take the
// fastest (see README.md, "The raw limit").
#ifndef CKPT_TOOLS_BENCH_BUFFER_H_
#define CKPT_TOOLS_BENCH_BUFFER_H_

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

enum class Memory {
  kPlain,      // malloc: pages are faulted in as they are first written
  kPopulated,  // anonymous mmap with MAP_POPULATE: faulted in at once
  kHuge,       // 2 MiB aligned, advised for transparent huge pages
  kMapped,     // malloc'd and written before any timer starts: the caller's
               // own buffers, already in memory
};

inline Memory memory_from_name(const std::string& name) {
  if (name == "plain") return Memory::kPlain;
  if (name == "populated") return Memory::kPopulated;
  if (name == "huge") return Memory::kHuge;
  if (name == "mapped") return Memory::kMapped;
  throw std::invalid_argument("unknown memory kind " + name);
}

// `n` bytes (at least one) of kind `memory`.
class Buffer {
 public:
  Buffer(size_t n, Memory memory) : memory_(memory) {
    size_ = n ? n : 1;
    if (memory == Memory::kPopulated) {
      void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
      if (p == MAP_FAILED) throw std::bad_alloc();
      data_ = p;
      return;
    }
    if (memory == Memory::kHuge && size_ >= (2u << 20)) {
      const size_t rounded = (size_ + (2u << 20) - 1) / (2u << 20) * (2u << 20);
      if (posix_memalign(&data_, 2u << 20, rounded) != 0) {
        throw std::bad_alloc();
      }
      ::madvise(data_, rounded, MADV_HUGEPAGE);
      return;
    }
    data_ = std::malloc(size_);
    if (!data_) throw std::bad_alloc();
    // Not zeros: malloc + memset(0) may become a calloc that touches
    // nothing.
    if (memory == Memory::kMapped) std::memset(data_, 0x5a, size_);
  }
  ~Buffer() {
    if (memory_ == Memory::kPopulated) {
      ::munmap(data_, size_);
    } else {
      std::free(data_);
    }
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void* data() const { return data_; }

 private:
  Memory memory_;
  size_t size_ = 0;
  void* data_ = nullptr;
};

#endif  // CKPT_TOOLS_BENCH_BUFFER_H_
