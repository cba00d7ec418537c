// Writes a pytree in Python Orbax's own storage, as ocp.save_pytree does
// with its defaults (use_ocdbt, use_zarr3): _METADATA in Orbax's shape,
// _strings.json, and an OCDBT database whose values are zarr v3 arrays
// (sharding_indexed, bytes, zstd, crc32c index). The process's
// sub-database ocdbt.process_0/ holds the chunks and its own B+tree; the
// root database (manifest.ocdbt, d/) refers to the same values. Orbax's
// load_pytree, TensorStore and ckpt read it.
#ifndef CKPT_PLUGINS_PYTREE_ORBAX_ORBAX_WRITER_H_
#define CKPT_PLUGINS_PYTREE_ORBAX_ORBAX_WRITER_H_

#include <string>

#include "save/snapshot.h"

namespace ckpt::pytree {

struct OrbaxWriteOptions {
  bool compress = true;  // zstd, as Orbax's default; false: raw bytes
  int zstd_level = 3;    // Orbax's (TensorStore's zstd codec) level
};

// Checks that `snapshot` (taken with no packing) can be stored in Orbax's
// format: every leaf has a distinct, non-empty parameter name (its keys
// joined by '.') without '/'. Throws sdk::Error (INVALID_ARGUMENT) naming
// `what` and the leaves otherwise.
void check_orbax_names(const Snapshot& snapshot, const std::string& what);

// Writes the tree of `snapshot` into the checkpointable's `folder`, one
// process's save. REQUIRES: check_orbax_names(snapshot) passed. Files get
// `file_mode`. Throws sdk::Error naming `what` and the file on a failed write.
void write_orbax_pytree(const std::string& folder, const Snapshot& snapshot,
                        const OrbaxWriteOptions& options, unsigned file_mode,
                        const std::string& what);

}  // namespace ckpt::pytree

#endif  // CKPT_PLUGINS_PYTREE_ORBAX_ORBAX_WRITER_H_
