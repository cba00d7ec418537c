// The pytree handler's options: the "pytree" object of the Context's
// handler options, e.g.
//   {"pytree": {"partial_load": true, "allow_shape_mismatch": false,
//               "verify_checksums": true, "pack_threshold_bytes": 262144,
//               "compression": "gzip" | {"type": "gzip", "level": 4},
//               "chunking": false}}
#ifndef CKPT_PLUGINS_PYTREE_RUNTIME_OPTIONS_H_
#define CKPT_PLUGINS_PYTREE_RUNTIME_OPTIONS_H_

#include <cstdint>
#include <string>

#include "hdf5/array_file.h"
#include "load/load_plan.h"

namespace ckpt::pytree {

struct PyTreeOptions {
  LoadOptions load;
  StorageOptions storage;
  // Per-array xxh3 only: the array file's structure checksum is always
  // checked (it keeps HDF5 away from a damaged file).
  bool verify_checksums = true;
  // Arrays smaller than this share one packed dataset per dtype.
  uint64_t pack_threshold_bytes = 256 * 1024;
};

// Parses the handler options JSON text (the whole object; only its
// "pytree" member is read); options it does not set keep their value in
// `defaults`. Throws sdk::Error (INVALID_ARGUMENT) for a malformed option.
PyTreeOptions parse_options(const std::string& options_json,
                            const PyTreeOptions& defaults = PyTreeOptions());

}  // namespace ckpt::pytree

#endif  // CKPT_PLUGINS_PYTREE_RUNTIME_OPTIONS_H_
