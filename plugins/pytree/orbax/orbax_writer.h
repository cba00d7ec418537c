// Writes a pytree in Python Orbax's own storage, as ocp.save_pytree does
// with its defaults (use_ocdbt, use_zarr3): _METADATA in Orbax's shape,
// _strings.json, and an OCDBT database whose values are zarr v3 arrays
// (sharding_indexed, bytes, zstd, crc32c index). Each process's
// sub-database ocdbt.process_<i>/ holds the chunks it wrote and its own
// B+tree; the root database (manifest.ocdbt, d/) refers to the values of
// them all. A sharded array is one zarr array whose chunk grid is its
// pieces' boxes. Orbax's load_pytree, TensorStore and ckpt read it.
#ifndef CKPT_PLUGINS_PYTREE_ORBAX_ORBAX_WRITER_H_
#define CKPT_PLUGINS_PYTREE_ORBAX_ORBAX_WRITER_H_

#include <ckpt/sdk/handler.h>

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

// Writes this process's share of the tree of `snapshot` into the
// checkpointable's folder (call.directory): its sub-database, and on the
// primary host _METADATA and _strings.json; with one process also the root
// database. REQUIRES: check_orbax_names(snapshot) passed. Files get
// call.file_mode. Throws sdk::Error naming `what` and the file on a failed
// write, UNIMPLEMENTED naming the leaf of a sharded array whose pieces do
// not tile a regular grid in a save by many processes.
void write_orbax_pytree(const ckpt::sdk::Call& call, const Snapshot& snapshot,
                        const OrbaxWriteOptions& options,
                        const std::string& what);

// After every process of a save by many wrote its share: the root database
// over the keys of every process's sub-database (their values referred
// to, not copied). Throws sdk::Error naming `what` and the file of a
// damaged sub-database.
void merge_orbax_databases(const ckpt::sdk::Call& call,
                           const std::string& what);

}  // namespace ckpt::pytree

#endif  // CKPT_PLUGINS_PYTREE_ORBAX_ORBAX_WRITER_H_
