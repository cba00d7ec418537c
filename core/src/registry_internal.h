#ifndef CKPT_SRC_REGISTRY_INTERNAL_H_
#define CKPT_SRC_REGISTRY_INTERNAL_H_

#include <ckpt/registry.h>

namespace ckpt::internal {

// The global registry without triggering the default plugin load (for the
// loader itself).
Registry& global_registry_unloaded();

// Appends every entry of `from` (with its secondary typestrs) to `to`.
void copy_entries(const HandlerRegistry& from, Registry& to);

}  // namespace ckpt::internal

#endif  // CKPT_SRC_REGISTRY_INTERNAL_H_
