// Save's blocking tier: flattens the caller's tree into leaf records and
// takes the snapshot of its arrays. Arrays below the pack threshold are
// copied straight into one shared buffer per dtype (the packed datasets);
// larger ones are copied into their own buffer, or, when the caller flagged
// them immutable and they are C-contiguous, kept by reference.
#ifndef CKPT_PLUGINS_PYTREE_SAVE_SNAPSHOT_H_
#define CKPT_PLUGINS_PYTREE_SAVE_SNAPSHOT_H_

#include <ckpt/abi.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "hdf5/array_file.h"
#include "records/tree_metadata.h"

namespace ckpt::pytree {

// The bytes of one array leaf in the snapshot.
struct ArrayBytes {
  size_t leaf = 0;             // index into Snapshot::metadata.leaves
  const void* data = nullptr;  // C-contiguous elements
  uint64_t nbytes = 0;
};

// One packed dataset: the small arrays of one dtype, back to back, in a
// buffer of their copies (`memory`) or, when they were all immutable, as
// they are in the caller's memory (`pieces`, in order).
struct PackBuffer {
  std::shared_ptr<void> memory;
  std::vector<Span> pieces;
  uint64_t elements = 0;
  std::string dataset;  // its HDF5 path (packed_dataset)
};

struct Snapshot {
  TreeMetadata metadata;  // checksums not yet computed
  std::vector<ArrayBytes> arrays;
  std::map<ckpt_dtype, PackBuffer> packs;
  std::vector<std::shared_ptr<void>> own_buffers;
  bool references_caller_memory = false;  // keep the caller's value alive
  // The pieces of sharded arrays this process writes, as a tree of their
  // own (piece_path keys) for its process files; null when none.
  std::shared_ptr<Snapshot> pieces;
};

// HDF5 path of the packed dataset of `dtype`.
std::string packed_dataset(ckpt_dtype dtype);

// Flattens and snapshots `value` for process `process` (of a save whose
// primary host writes the tree's own arrays: with `primary` false they are
// recorded, not copied). Throws sdk::Error (INVALID_ARGUMENT) naming
// `what` and the key path for an empty root, an unsupported leaf or an
// array ckpt cannot store.
Snapshot take_snapshot(const ckpt_value& value, uint64_t pack_threshold_bytes,
                       int process, bool primary, const std::string& what);

// Whether `leaf_ok` holds for every leaf of the tree `value` (dicts and
// lists are walked; empty ones count as leaves).
bool every_leaf(const ckpt_value& value, bool (*leaf_ok)(const ckpt_value&));

// Whether every leaf of `value` is one the pytree handler saves.
bool is_supported_tree(const ckpt_value& value);

// Copies the elements of `array` (any strides) to `destination` in C order.
void copy_contiguous(const ckpt_array& array, void* destination);

// Whether `array` is laid out C-contiguously.
bool is_c_contiguous(const ckpt_array& array);

}  // namespace ckpt::pytree

#endif  // CKPT_PLUGINS_PYTREE_SAVE_SNAPSHOT_H_
