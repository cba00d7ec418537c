// _METADATA: the pytree's structure, leaf kinds and array descriptions in
// Orbax's shape (tree_metadata keyed by key path, key_metadata and
// value_metadata per leaf), plus ckpt's additions per array: dtype, shape,
// where it is stored and its xxh3 checksum. Reads ckpt's files and the
// metadata of pytrees Python Orbax wrote.
#ifndef CKPT_PLUGINS_PYTREE_TREE_METADATA_H_
#define CKPT_PLUGINS_PYTREE_TREE_METADATA_H_

#include <ckpt/abi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "key_path.h"

namespace ckpt_pytree {

constexpr const char* kMetadataFile = "_METADATA";
constexpr const char* kArrayFile = "arrays.h5";
// The storage format id of ckpt's HDF5 layout (see README.md).
constexpr const char* kStorageFormat = "ckpt.hdf5.v1";

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

struct LeafRecord {
  KeyPath path;
  LeafKind kind = LeafKind::kNone;
  std::string value_type;  // as recorded, e.g. "np.ndarray", "jax.Array"

  // kArray. dtype is CKPT_DTYPE_INVALID when the writer did not record it
  // (Orbax keeps dtypes inside its array store).
  ckpt_dtype dtype = CKPT_DTYPE_INVALID;
  std::vector<int64_t> shape;
  ArrayLocation location;
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
};

// The _METADATA text of `metadata`.
std::string format_tree_metadata(const TreeMetadata& metadata);

// Parses _METADATA text (metadata_reader.cpp). Throws sdk::Error
// (INVALID_LAYOUT) naming `what` (the file) when the text is not valid pytree
// metadata.
TreeMetadata parse_tree_metadata(const std::string& text,
                                 const std::string& what);

}  // namespace ckpt_pytree

#endif  // CKPT_PLUGINS_PYTREE_TREE_METADATA_H_
