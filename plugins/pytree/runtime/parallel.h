// Spreading the plugin's bulk work (reads, copies, checksums) over the
// machine's cores: on these sizes one thread leaves most of the memory
// bandwidth unused, and first touch of fresh memory costs as much as the
// copy into it.
#ifndef CKPT_PLUGINS_PYTREE_RUNTIME_PARALLEL_H_
#define CKPT_PLUGINS_PYTREE_RUNTIME_PARALLEL_H_

#include <cstddef>
#include <cstdint>
#include <functional>

namespace ckpt::pytree {

// How many threads bulk work of `bytes` bytes uses: one below
// kParallelBytes, else the machine's cores, at most 8.
size_t threads_for(uint64_t bytes);
constexpr uint64_t kParallelBytes = 8u << 20;

// Runs task(i) for every i in [0, count) on up to `threads` threads (the
// calling one included), each taking the next index. Returns once every
// started task has ended; rethrows the first exception a task threw, and
// then the indices not yet taken are not run.
void parallel_for(size_t count, size_t threads,
                  const std::function<void(size_t)>& task);

}  // namespace ckpt::pytree

#endif  // CKPT_PLUGINS_PYTREE_RUNTIME_PARALLEL_H_
