// _TREE_INDEX: ckpt's binary record of a pytree it saved (ckpt_pytree_format
// 3 on). It holds what _METADATA holds (every leaf's key path, kind, value,
// dtype, shape, storage and checksum, the array file's structure record) in
// a form a load reads in a few milliseconds for tens of thousands of
// leaves, where parsing _METADATA's JSON costs microseconds a leaf. Loads
// and metadata read it instead of _METADATA, which stays as the record in
// Orbax's shape for other readers. See README.md for the layout.
#ifndef CKPT_PLUGINS_PYTREE_RECORDS_TREE_INDEX_H_
#define CKPT_PLUGINS_PYTREE_RECORDS_TREE_INDEX_H_

#include <string>
#include <string_view>

#include "records/tree_metadata.h"

namespace ckpt::pytree {

constexpr const char* kTreeIndexFile = "_TREE_INDEX";

// The index file that goes with the tree metadata file `metadata_file`:
// _TREE_INDEX for _METADATA, _TREE_INDEX.process_<p> for
// _METADATA.process_<p>.
std::string tree_index_file(const std::string& metadata_file);

// The index of `metadata` (a tree ckpt saves: every array with its
// checksum, or sharded; the structure record set).
std::string encode_tree_index(const TreeMetadata& metadata);

// Reads an index, checking every count, length, number, name and path
// before use, as parse_tree_metadata does for _METADATA, and the tree's
// structure: each container's keys are distinct and of one key type (a
// list's are its positions, "0", "1", ...), a subtree's leaves are
// recorded together, and a leaf at the root is the only leaf. Throws
// sdk::Error naming `what` (the file): DATA_LOSS for anything ckpt does not
// write, UNIMPLEMENTED for an index version newer than this ckpt reads or a
// key holding NUL.
TreeMetadata decode_tree_index(std::string_view bytes, const std::string& what);

// The tree a pytree checkpointable records in `directory` under
// `metadata_file` (_METADATA, or a process's record): from its index when
// there is one, else from the JSON (ckpt before format 3, and Orbax).
// Throws sdk::Error naming `what`: NOT_FOUND when neither file is there,
// DATA_LOSS for a format-3 _METADATA whose index is missing, and the
// parsers' errors.
TreeMetadata read_saved_tree(const std::string& directory,
                             const std::string& metadata_file,
                             const std::string& what);

}  // namespace ckpt::pytree

#endif  // CKPT_PLUGINS_PYTREE_RECORDS_TREE_INDEX_H_
