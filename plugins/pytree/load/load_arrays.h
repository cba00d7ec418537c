// Load's background tier: reads the planned arrays from the HDF5 file,
// verifies their checksums and converts them to the requested dtype and
// shape. Reading holds the HDF5 lock only to find the datasets; the bytes,
// the checksums and the conversions are moved outside it.
#ifndef CKPT_PLUGINS_PYTREE_LOAD_LOAD_ARRAYS_H_
#define CKPT_PLUGINS_PYTREE_LOAD_LOAD_ARRAYS_H_

#include <string>

#include "load/load_plan.h"
#include "orbax/orbax_storage.h"

namespace ckpt::pytree {

// Reads every array of `plan` from its array file in `directory` and
// stores each as the value of its leaf; the pieces of sharded arrays come
// from the files of the processes that wrote them, only those that overlap
// what is asked for. The file's structure record (when _METADATA has one) is
// checked first, whatever `verify_checksums` says; every dataset is checked
// before memory is allocated for it; `verify_checksums` covers the
// per-array xxh3 of the arrays read. `caller_memory` keeps the caller's
// buffers (abstract arrays filled in place) alive as long as the loaded
// value. Throws sdk::Error (DATA_LOSS on a checksum mismatch or a damaged
// file) naming `what` and the file.
void load_arrays(LoadPlan& plan, const std::string& directory,
                 bool verify_checksums,
                 const std::shared_ptr<void>& caller_memory,
                 const std::string& what);

// The same for a pytree Python Orbax wrote, from `storage` (whose
// describe() filled in `plan`'s saved arrays): each array is read whole,
// then converted or assembled like an array of ckpt's format. The
// checksums are the format's own (OCDBT's and the shard indexes'
// CRC-32C), always checked.
void load_orbax_arrays(LoadPlan& plan, const OrbaxStorage& storage,
                       const std::shared_ptr<void>& caller_memory,
                       const std::string& what);

// The xxh3-64 checksum of `nbytes` bytes.
uint64_t checksum(const void* data, uint64_t nbytes);

}  // namespace ckpt::pytree

#endif  // CKPT_PLUGINS_PYTREE_LOAD_LOAD_ARRAYS_H_
