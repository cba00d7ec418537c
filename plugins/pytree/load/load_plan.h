// Load's blocking tier: matches the abstract tree (or none, "as saved")
// against the saved leaf records and decides what to read and how to
// convert it. The background tier (load_arrays.h) then reads and fills in
// the array leaves.
#ifndef CKPT_PLUGINS_PYTREE_LOAD_LOAD_PLAN_H_
#define CKPT_PLUGINS_PYTREE_LOAD_LOAD_PLAN_H_

#include <ckpt/abi.h>
#include <ckpt/sdk/value.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "records/tree_metadata.h"

namespace ckpt::pytree {

// A node of the tree being loaded. Small: a load of many leaves holds one
// a leaf while it reads their bytes.
struct OutNode {
  enum class Kind { kDict, kList, kLeaf };
  Kind kind = Kind::kLeaf;
  std::vector<std::string> keys;
  std::vector<std::unique_ptr<OutNode>> children;
  // A leaf's value, when not a plain array; none when null.
  std::unique_ptr<ckpt::sdk::OutValue> value;
  int array = -1;  // index into LoadPlan::arrays
  // A plain array leaf's elements, once read (load_arrays), and their
  // keeper.
  void* data = nullptr;
  std::shared_ptr<void> owner;
  bool is_saved_leaf = false;  // a saved record's leaf (while building)
  void set(ckpt::sdk::OutValue v) {
    value = std::make_unique<ckpt::sdk::OutValue>(std::move(v));
  }
};

// One array leaf to read.
struct ArrayLoad {
  size_t leaf = 0;                        // index into LoadPlan::saved.leaves
  ckpt_dtype dtype = CKPT_DTYPE_INVALID;  // requested
  std::vector<int64_t> shape;             // requested
  // Caller memory (a concrete array in the abstract tree) of exactly the
  // requested dtype and shape, filled in place; null = allocate.
  void* caller_buffer = nullptr;
  // Assembled from boxes rather than read as one dataset: the saved leaf is
  // sharded, or the abstract tree asks for boxes. `boxes`: those boxes
  // (the result is a sharded array), or empty for the whole array (a plain
  // array). `source`: for a saved plain array, the plan array that reads
  // it whole (an entry without a node), else -1.
  bool assembled = false;
  bool sharded_out = false;
  std::vector<StoredPiece> boxes;
  int source = -1;
};

// Reading saved leaf `index` (an array) as saved, into fresh memory.
ArrayLoad as_saved_load(size_t index, const LeafRecord& leaf);

struct LoadOptions {
  bool partial_load = false;
  bool allow_shape_mismatch = false;
};

struct LoadPlan {
  TreeMetadata saved;
  std::unique_ptr<OutNode> root;
  std::vector<ArrayLoad> arrays;
};

// Plans loading `saved` into `abstract_value` (null = as saved). Throws
// sdk::Error naming `what` and the key path: NOT_FOUND for a key the
// checkpoint lacks, INVALID_ARGUMENT for a kind or shape mismatch, a
// placeholder standing for a subtree, or saved leaves the abstract tree
// leaves out without partial_load.
LoadPlan plan_load(TreeMetadata saved, const ckpt_value* abstract_value,
                   const LoadOptions& options, const std::string& what);

// The abstract tree of `saved`: array specs, scalar specs, none and empty
// containers, in the saved structure. Usable as a load target.
ckpt::sdk::OutValue abstract_tree(const TreeMetadata& saved,
                                  const std::string& what);

// Turns a finished OutNode tree into the value handed to the host, freeing
// the nodes as it goes; a plain array leaf becomes an array of the dtype
// and shape its entry of `arrays` asks for.
ckpt::sdk::OutValue to_out_value(OutNode& node,
                                 const std::vector<ArrayLoad>& arrays = {});

}  // namespace ckpt::pytree

#endif  // CKPT_PLUGINS_PYTREE_LOAD_LOAD_PLAN_H_
