// Where Python Orbax's pytree handler stores a tree's values (the storage
// format _METADATA's use_ocdbt and use_zarr3 name): each array, and each
// scalar as a 0-d array, is a zarr array (v3 by default, v2 in older
// checkpoints) whose name is its key path's keys joined by '.'
// ("params.dense.kernel"), kept in the OCDBT database of the
// checkpointable's folder (keys "<name>/zarr.json", "<name>/c/0", ... or
// "<name>/.zarray", "<name>/0", ...), or without OCDBT in a folder of that
// name; strings are in _strings.json. Read only.
#ifndef CKPT_PLUGINS_PYTREE_ORBAX_ORBAX_STORAGE_H_
#define CKPT_PLUGINS_PYTREE_ORBAX_ORBAX_STORAGE_H_

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "orbax/folder_files.h"
#include "orbax/ocdbt_database.h"
#include "orbax/zarr_array.h"
#include "records/tree_metadata.h"

namespace ckpt::pytree {

// The storage formats parse_tree_metadata names for Orbax's pytrees.
constexpr const char* kOrbaxOcdbtZarr3 = "orbax.ocdbt+zarr3";
constexpr const char* kOrbaxZarr3 = "orbax.tensorstore+zarr3";
constexpr const char* kOrbaxOcdbtZarr2 = "orbax.ocdbt+zarr";
constexpr const char* kOrbaxZarr2 = "orbax.tensorstore+zarr";
bool is_orbax_storage_format(const std::string& id);

// Orbax's parameter name of a key path: its keys joined by '.'.
std::string orbax_param_name(const KeyPath& path);

// Thread-safe once constructed and described.
class OrbaxStorage {
 public:
  // Opens the storage of a pytree whose _METADATA (read into `saved`)
  // names an Orbax storage format, in the checkpointable's `folder`.
  // `what` names the checkpointable in messages. Throws sdk::Error:
  // UNIMPLEMENTED for a storage format that is not Orbax's, DATA_LOSS naming
  // the file when the OCDBT database is missing or damaged.
  OrbaxStorage(const std::string& folder, const TreeMetadata& saved,
               std::string what);
  ~OrbaxStorage();

  // Fills in every array leaf's dtype and shape from its zarr.json (or
  // .zarray). Throws
  // DATA_LOSS naming the leaf and file when one cannot be read, or
  // UNIMPLEMENTED naming what this reader does not decode.
  void describe(TreeMetadata& saved);
  // The same for one leaf; false (the leaf untouched) when its zarr.json
  // cannot be read, for metadata, which falls back to _METADATA's
  // write_shape and an unknown dtype.
  bool try_describe(LeafRecord& leaf);

  // Reads the values of the scalar and string leaves into them.
  void read_values(TreeMetadata& saved);

  // Checks, before memory is allocated for array leaf `leaf` (described),
  // that every chunk of it is stored when the writer stored every chunk
  // (_METADATA's store_array_data_equal_to_fill_value): DATA_LOSS naming
  // the first one missing.
  void check(const LeafRecord& leaf) const;

  // Reads array leaf `leaf` (described) whole into `out`: its dtype, its
  // shape, C order. Throws DATA_LOSS naming the leaf and the file or key.
  void read(const LeafRecord& leaf, void* out) const;

 private:
  struct Array;
  const Array& array_of(const LeafRecord& leaf);
  // The stored value of `key` (relative to the checkpointable's folder in
  // the non-OCDBT layout); nullopt when absent.
  std::optional<std::string> get(const std::string& key) const;
  std::string where(const LeafRecord& leaf) const;

  std::string what_;
  bool every_chunk_stored_ = false;
  bool zarr3_ = true;  // zarr.json; else zarr v2's .zarray
  std::unique_ptr<orbax::FolderFiles> files_;  // the checkpointable's folder
  std::unique_ptr<ocdbt::Database> database_;  // null without OCDBT
  std::map<std::string, std::unique_ptr<Array>> arrays_;  // by param name
};

}  // namespace ckpt::pytree

#endif  // CKPT_PLUGINS_PYTREE_ORBAX_ORBAX_STORAGE_H_
