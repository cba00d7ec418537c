// The pytree handler's options: the "pytree" object of the Context's
// handler options, e.g.
//   {"pytree": {"partial_load": true, "allow_shape_mismatch": false,
//               "verify_checksums": true, "pack_threshold_bytes": 262144,
//               "compression": "gzip" | {"type": "gzip", "level": 4},
//               "chunking": false, "storage": "ckpt"}}
// "storage": "orbax" saves in Python Orbax's own storage (OCDBT + zarr v3,
// orbax_writer.h); its "compression" is "zstd" (the default, level 3, or
// {"type": "zstd", "level": N}) or "none".
#ifndef CKPT_PLUGINS_PYTREE_RUNTIME_OPTIONS_H_
#define CKPT_PLUGINS_PYTREE_RUNTIME_OPTIONS_H_

#include <cstdint>
#include <string>

#include "hdf5/array_file.h"
#include "load/load_plan.h"
#include "orbax/orbax_writer.h"

namespace ckpt::pytree {

struct PyTreeOptions {
  LoadOptions load;
  StorageOptions storage;
  // Per-array xxh3 only: the array file's structure checksum is always
  // checked (it keeps HDF5 away from a damaged file).
  bool verify_checksums = true;
  // Arrays smaller than this share one packed dataset per dtype.
  uint64_t pack_threshold_bytes = 256 * 1024;
  // "storage": "orbax", and how it compresses.
  bool orbax_storage = false;
  OrbaxWriteOptions orbax;
  // The compression type the options named ("" when none was named), to
  // check it against the storage.
  std::string compression_named;
};

// Parses the handler options JSON text (the whole object; only its
// "pytree" member is read); options it does not set keep their value in
// `defaults`. Throws sdk::Error (INVALID_ARGUMENT) for a malformed option.
PyTreeOptions parse_options(const std::string& options_json,
                            const PyTreeOptions& defaults = PyTreeOptions());

}  // namespace ckpt::pytree

#endif  // CKPT_PLUGINS_PYTREE_RUNTIME_OPTIONS_H_
