#ifndef CKPT_SRC_HANDLERS_REGISTRY_H_
#define CKPT_SRC_HANDLERS_REGISTRY_H_

#include <ckpt/registry.h>

namespace ckpt::internal {

// The global registry as plain data: start_up() fills it; public entry
// points reach it through global_registry(), after start_up().
Registry& global_registry_data();

// Appends every entry of `from` (with its secondary typestrs) to `to`.
void copy_entries(const HandlerRegistry& from, Registry& to);

}  // namespace ckpt::internal

#endif  // CKPT_SRC_HANDLERS_REGISTRY_H_
