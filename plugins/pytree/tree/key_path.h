// Key paths: where a leaf sits in a tree, as Orbax records them, and the
// HDF5 names ckpt derives from them.
#ifndef CKPT_PLUGINS_PYTREE_TREE_KEY_PATH_H_
#define CKPT_PLUGINS_PYTREE_TREE_KEY_PATH_H_

#include <string>
#include <vector>

namespace ckpt::pytree {

// Orbax's KeyType values in _METADATA's key_metadata.
enum class KeyType { kSequence = 1, kDict = 2 };

struct KeyEntry {
  std::string key;  // a dict key, or a list index in decimal
  KeyType type = KeyType::kDict;
};

using KeyPath = std::vector<KeyEntry>;

// Orbax's tree_metadata key: the Python repr of the tuple of keys, e.g.
// "('params', 'w')" or "('a',)". Also how error messages name a leaf.
std::string key_path_repr(const KeyPath& path);
// The same, appended to `out`.
void append_key_path_repr(const KeyPath& path, std::string& out);

// The HDF5 link name of one key: '%', '/' and NUL are percent-encoded (%25,
// %2F, %00), a key made only of dots has its dots encoded (%2E), the empty
// key is "%", and a leading "_ckpt" (reserved for ckpt's own datasets)
// becomes "%5Fckpt". Decoding is the usual percent-decoding.
std::string hdf5_name(const std::string& key);

// The absolute HDF5 path of a leaf's own dataset: "/" + the escaped keys
// joined by "/"; a leaf at the root (empty path) is "/_ckpt_root".
std::string hdf5_path(const KeyPath& path);
// hdf5_path(path).size(), without making it.
size_t hdf5_path_length(const KeyPath& path);

}  // namespace ckpt::pytree

#endif  // CKPT_PLUGINS_PYTREE_TREE_KEY_PATH_H_
