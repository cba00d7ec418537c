// _METADATA: the pytree's structure, leaf kinds and array descriptions in
// Orbax's shape (tree_metadata keyed by key path, key_metadata and
// value_metadata per leaf), plus ckpt's additions per array: dtype, shape,
// where it is stored and its xxh3 checksum. Reads ckpt's files and the
// metadata of pytrees Python Orbax wrote.
#ifndef CKPT_PLUGINS_PYTREE_RECORDS_TREE_METADATA_H_
#define CKPT_PLUGINS_PYTREE_RECORDS_TREE_METADATA_H_

#include <ckpt/abi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "hdf5/array_file.h"
#include "tree/key_path.h"

namespace ckpt::pytree {

constexpr const char* kMetadataFile = "_METADATA";
constexpr const char* kArrayFile = "arrays.h5";
// The storage format id of ckpt's HDF5 layout (see README.md): v2, what
// this ckpt writes, has an index dataset without per-row dataset names; v1
// (older ckpt) is the same layout otherwise, and loads alike.
constexpr const char* kStorageFormat = "ckpt.hdf5.v2";
constexpr const char* kStorageFormatV1 = "ckpt.hdf5.v1";
inline bool is_ckpt_storage_format(const std::string& id) {
  return id == kStorageFormat || id == kStorageFormatV1;
}
// _METADATA's "ckpt_pytree_format": 2 means every array has its xxh3 and
// the array file has a structure record ("ckpt_array_file_structure"); 3
// (what this ckpt writes) adds the tree index (tree_index.h), from which
// loads read the tree. Files without it (older ckpt, Orbax) carry neither
// guarantee.
constexpr int64_t kPyTreeFormat = 3;
// The oldest format that promises checksums and a structure record.
constexpr int64_t kCheckedPyTreeFormat = 2;

// Limits of what ckpt writes and reads: a key path of at most
// kMaxTreeDepth keys (every walk over a tree is bounded by it), arrays of
// rank at most kMaxRank (HDF5's own limit), dataset paths of at most
// kMaxDatasetPath bytes.
constexpr size_t kMaxTreeDepth = 512;
constexpr size_t kMaxRank = 32;
constexpr size_t kMaxDatasetPath = 64 * 1024;
// The most pieces one sharded array may have.
constexpr size_t kMaxPieces = 65536;

// Sharded arrays: process p writes its pieces to kProcessArrayPrefix + p +
// ".h5" (self-checked, like arrays.h5), described by its own tree
// metadata in "_METADATA.process_<p>" (checked by the core).
constexpr const char* kProcessArrayPrefix = "arrays.process_";
std::string process_array_file(int64_t process);
std::string process_metadata_file(int64_t process);
// The highest process number a checkpoint may name.
constexpr int64_t kMaxProcess = (int64_t{1} << 24) - 1;

// Orbax's value_type strings.
constexpr const char* kArrayValueType = "np.ndarray";
constexpr const char* kScalarValueType = "scalar";
constexpr const char* kStringValueType = "string";
constexpr const char* kNoneValueType = "None";
constexpr const char* kDictValueType = "Dict";
constexpr const char* kListValueType = "List";

enum class LeafKind {
  kArray,
  kBool,
  kInt,
  kDouble,
  kString,
  kNone,
  kEmptyDict,
  kEmptyList,
};

// Where an array's elements are in the HDF5 file.
struct ArrayLocation {
  std::string dataset;  // absolute HDF5 path
  bool packed = false;  // a slice of a shared 1-d dataset
  uint64_t offset = 0;  // first element within a packed dataset
};

// One box of a sharded array and the process whose file holds it.
struct StoredPiece {
  std::vector<int64_t> offset;
  std::vector<int64_t> shape;
  int64_t process = 0;
};

// The key path of piece `k` of the sharded array at `path`, in its
// process's tree: `path` followed by the key "<k>".
KeyPath piece_path(const KeyPath& path, size_t k);

struct LeafRecord {
  KeyPath path;
  LeafKind kind = LeafKind::kNone;
  std::string value_type;  // as recorded, e.g. "np.ndarray", "jax.Array"

  // kArray. dtype is CKPT_DTYPE_INVALID when the writer did not record it
  // (Orbax keeps dtypes inside its array store).
  ckpt_dtype dtype = CKPT_DTYPE_INVALID;
  std::vector<int64_t> shape;
  ArrayLocation location;
  // A sharded array: `shape` is its global shape, `location` the virtual
  // dataset of arrays.h5, and its elements are in `pieces` (no checksum
  // here: each piece has its own in its process's metadata).
  bool sharded = false;
  std::vector<StoredPiece> pieces;
  bool has_checksum = false;
  uint64_t xxh3 = 0;

  // Scalars, when stored inline (ckpt writes them; Orbax does not).
  bool has_value = false;
  bool bool_value = false;
  int64_t int_value = 0;
  double double_value = 0;
  std::string string_value;
};

struct TreeMetadata {
  std::vector<LeafRecord> leaves;  // in tree order
  // kStorageFormat, or e.g. "orbax.ocdbt+zarr3" for an Orbax pytree.
  std::string storage_format = kStorageFormat;
  std::string array_file = kArrayFile;
  // "ckpt_pytree_format": kPyTreeFormat when written by this ckpt, 0 when
  // not recorded.
  int64_t format = 0;
  // "ckpt_array_file_structure", when recorded.
  bool has_structure = false;
  ArrayFileStructure structure;
  // The file this record was read from (a plain name: _TREE_INDEX,
  // _METADATA, ...), for messages.
  std::string record = kMetadataFile;
  // Orbax's store_array_data_equal_to_fill_value: every chunk of every
  // array was written, none left to the fill value.
  bool every_chunk_stored = false;
  // The leaves' key paths were checked as a tree (decode_tree_index): each
  // container's keys distinct, each subtree's leaves together.
  bool structure_checked = false;
};

// The _METADATA text of `metadata`: format_tree_metadata_body() followed by
// format_tree_metadata_end() (separate so that the body, the long part, can
// be made while the array file is written, before its structure is known).
std::string format_tree_metadata(const TreeMetadata& metadata);
std::string format_tree_metadata_body(const TreeMetadata& metadata);
// The format marker and structure record (when set), and the closing brace.
std::string format_tree_metadata_end(const TreeMetadata& metadata);

// Whether `name` can be the array file named in _METADATA: a plain file
// name in the checkpointable's folder (not empty, no '/' or '\', not "."
// or "..", no NUL, at most 255 bytes).
bool is_plain_file_name(const std::string& name);

// Parses _METADATA text (metadata_reader.cpp), after checking its nesting
// depth, and validates every number, name and path in it. Throws
// sdk::Error naming `what` (the file): INVALID_LAYOUT when the text is not
// pytree metadata (not JSON, no tree_metadata), DATA_LOSS for a value no
// ckpt writes (a negative or too large shape, an unknown dtype, an array
// file that is not a plain name, a bad offset or checksum, a tree deeper
// than kMaxTreeDepth, a missing checksum or structure record where the
// format marker promises one), UNIMPLEMENTED for what ckpt cannot hand
// over (a key holding NUL, which the plugin ABI's keys cannot carry; a
// newer format).
TreeMetadata parse_tree_metadata(const std::string& text,
                                 const std::string& what);

}  // namespace ckpt::pytree

#endif  // CKPT_PLUGINS_PYTREE_RECORDS_TREE_METADATA_H_
