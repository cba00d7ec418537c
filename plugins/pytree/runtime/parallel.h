// Spreading the plugin's bulk work (reads, copies, checksums) over the
// machine's cores: on these sizes one thread leaves most of the memory
// bandwidth unused, and first touch of fresh memory costs as much as the
// copy into it.
#ifndef CKPT_PLUGINS_PYTREE_RUNTIME_PARALLEL_H_
#define CKPT_PLUGINS_PYTREE_RUNTIME_PARALLEL_H_

#include <ckpt/sdk/parallel.h>

#include <cstddef>
#include <cstdint>

namespace ckpt::pytree {

// How many threads bulk work of `bytes` bytes uses: one below
// kParallelBytes, else the machine's cores, at most 8.
size_t threads_for(uint64_t bytes);
constexpr uint64_t kParallelBytes = 8u << 20;

// The SDK's loop over threads.
using sdk::parallel_for;

}  // namespace ckpt::pytree

#endif  // CKPT_PLUGINS_PYTREE_RUNTIME_PARALLEL_H_
