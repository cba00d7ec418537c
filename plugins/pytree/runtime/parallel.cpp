#include "runtime/parallel.h"

#include <algorithm>
#include <thread>

namespace ckpt::pytree {

size_t threads_for(uint64_t bytes) {
  if (bytes < kParallelBytes) return 1;
  const unsigned cores = std::thread::hardware_concurrency();
  return std::clamp<size_t>(cores, 1, 8);
}

}  // namespace ckpt::pytree
