// Memory for snapshots and loaded arrays.
#ifndef CKPT_PLUGINS_PYTREE_RUNTIME_BUFFERS_H_
#define CKPT_PLUGINS_PYTREE_RUNTIME_BUFFERS_H_

#include <cstdint>
#include <memory>

namespace ckpt::pytree {

// An uninitialised buffer of `nbytes` (at least 1), freed with the last
// owner. Large buffers are 2 MiB aligned and asked to be backed by
// transparent huge pages: filling fresh memory is otherwise dominated by
// page faults (one per 4 KiB).
std::shared_ptr<void> allocate_buffer(uint64_t nbytes);

}  // namespace ckpt::pytree

#endif  // CKPT_PLUGINS_PYTREE_RUNTIME_BUFFERS_H_
