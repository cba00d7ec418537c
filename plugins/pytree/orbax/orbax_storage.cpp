#include "orbax/orbax_storage.h"

#include <ckpt/abi.h>
#include <ckpt/sdk/dtype.h>
#include <ckpt/sdk/error.h>
#include <ckpt/sdk/json.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "tree/cast.h"

namespace ckpt::pytree {

namespace {

using ckpt::sdk::Error;

constexpr const char* kManifestFile = "manifest.ocdbt";
constexpr const char* kStringsFile = "_strings.json";
constexpr uint64_t kMaxStringsBytes = uint64_t{256} << 20;

bool is_integer(ckpt_dtype d) {
  return d >= CKPT_DTYPE_INT8 && d <= CKPT_DTYPE_UINT64;
}

// The JSON value at pointer "/" + `name` (RFC 6901: '/' separates tokens,
// "~1" is '/', "~0" is '~'), as TensorStore's json driver finds it; null
// when absent.
const nlohmann::json* at_pointer(const nlohmann::json& doc,
                                 const std::string& name) {
  const nlohmann::json* at = &doc;
  size_t start = 0;
  for (;;) {
    const size_t slash = name.find('/', start);
    std::string token;
    const size_t end = slash == std::string::npos ? name.size() : slash;
    for (size_t i = start; i < end; ++i) {
      if (name[i] == '~' && i + 1 < end &&
          (name[i + 1] == '0' || name[i + 1] == '1')) {
        token += name[i + 1] == '0' ? '~' : '/';
        ++i;
      } else {
        token += name[i];
      }
    }
    if (!at->is_object()) return nullptr;
    auto it = at->find(token);
    if (it == at->end()) return nullptr;
    at = &*it;
    if (slash == std::string::npos) return at;
    start = slash + 1;
  }
}

}  // namespace

bool is_orbax_storage_format(const std::string& id) {
  return id == kOrbaxOcdbtZarr3 || id == kOrbaxZarr3 ||
         id == kOrbaxOcdbtZarr2 || id == kOrbaxZarr2;
}

std::string orbax_param_name(const KeyPath& path) {
  std::string name;
  for (size_t i = 0; i < path.size(); ++i) {
    if (i) name += '.';
    name += path[i].key;
  }
  return name;
}

struct OrbaxStorage::Array {
  zarr::ArrayMetadata metadata;
};

OrbaxStorage::OrbaxStorage(const std::string& folder, const TreeMetadata& saved,
                           std::string what)
    : what_(std::move(what)), every_chunk_stored_(saved.every_chunk_stored) {
  if (!is_orbax_storage_format(saved.storage_format)) {
    throw Error(CKPT_ERROR_UNIMPLEMENTED,
                what_ + ": storage format '" + saved.storage_format +
                    "' is not supported (ckpt reads Orbax's zarr arrays, "
                    "with or without OCDBT)");
  }
  zarr3_ = saved.storage_format == kOrbaxOcdbtZarr3 ||
           saved.storage_format == kOrbaxZarr3;
  files_ = std::make_unique<orbax::FolderFiles>(folder, what_);
  if (saved.storage_format == kOrbaxOcdbtZarr3 ||
      saved.storage_format == kOrbaxOcdbtZarr2) {
    if (!files_->size_if_exists(kManifestFile)) {
      throw Error(CKPT_ERROR_DATA_LOSS,
                  what_ + ": " + files_->shown(kManifestFile) +
                      " is missing (the OCDBT database of its arrays)");
    }
    database_ = std::make_unique<ocdbt::Database>(folder, what_);
  }
}

OrbaxStorage::~OrbaxStorage() = default;

std::optional<std::string> OrbaxStorage::get(const std::string& key) const {
  if (database_) {
    std::optional<ocdbt::ValueLocation> at = database_->find(key);
    if (!at) return std::nullopt;
    return database_->read(*at);
  }
  if (!orbax::is_safe_relative_path(key)) {
    throw Error(CKPT_ERROR_DATA_LOSS, what_ + ": an array name leads outside " +
                                          files_->shown("") + " (\"" +
                                          key.substr(0, 200) + "\")");
  }
  std::optional<uint64_t> size = files_->size_if_exists(key);
  if (!size) return std::nullopt;
  return files_->read(key, 0, *size, "a file of its arrays", "value");
}

std::string OrbaxStorage::where(const LeafRecord& leaf) const {
  const std::string name = orbax_param_name(leaf.path);
  return what_ + ": key path " + key_path_repr(leaf.path) + " (array '" + name +
         "' " +
         (database_ ? "in the OCDBT database in " + files_->shown("")
                    : "in " + files_->shown(name)) +
         ")";
}

const OrbaxStorage::Array& OrbaxStorage::array_of(const LeafRecord& leaf) {
  const std::string name = orbax_param_name(leaf.path);
  auto it = arrays_.find(name);
  if (it != arrays_.end()) return *it->second;
  const char* file = zarr3_ ? "zarr.json" : ".zarray";
  const std::string key = name.empty() ? file : name + "/" + file;
  std::optional<std::string> text = get(key);
  if (!text) {
    throw Error(CKPT_ERROR_DATA_LOSS,
                where(leaf) + ": its " + file + " is missing");
  }
  auto array = std::make_unique<Array>();
  try {
    array->metadata =
        zarr3_ ? zarr::parse_array_metadata(*text) : zarr::parse_zarray(*text);
  } catch (const Damaged& e) {
    throw Error(CKPT_ERROR_DATA_LOSS, where(leaf) + ": its " + file +
                                          " is damaged (" + e.what() + ")");
  } catch (const Unsupported& e) {
    throw Error(CKPT_ERROR_UNIMPLEMENTED, where(leaf) + ": its " + file +
                                              " uses " + e.what() +
                                              ", which ckpt does not read");
  } catch (const Error& e) {
    throw Error(e.code(), where(leaf) + ": its " + file + ": " + e.what());
  }
  return *arrays_.emplace(name, std::move(array)).first->second;
}

void OrbaxStorage::describe(TreeMetadata& saved) {
  for (LeafRecord& leaf : saved.leaves) {
    if (leaf.kind != LeafKind::kArray) continue;
    const zarr::ArrayMetadata& m = array_of(leaf).metadata;
    leaf.dtype = m.dtype;
    leaf.shape = m.shape;
  }
}

bool OrbaxStorage::try_describe(LeafRecord& leaf) {
  const bool scalar = leaf.kind == LeafKind::kBool ||
                      leaf.kind == LeafKind::kInt ||
                      leaf.kind == LeafKind::kDouble;
  if (leaf.kind != LeafKind::kArray && !scalar) return true;
  const zarr::ArrayMetadata* m = nullptr;
  try {
    m = &array_of(leaf).metadata;
  } catch (const Error&) {
    return false;
  }
  if (leaf.kind == LeafKind::kArray) {
    leaf.dtype = m->dtype;
    leaf.shape = m->shape;
  } else {
    leaf.kind = m->dtype == CKPT_DTYPE_BOOL ? LeafKind::kBool
                : is_integer(m->dtype)      ? LeafKind::kInt
                                            : LeafKind::kDouble;
  }
  return true;
}

void OrbaxStorage::read_values(TreeMetadata& saved) {
  std::optional<nlohmann::json> strings;
  for (LeafRecord& leaf : saved.leaves) {
    if (leaf.has_value) continue;
    if (leaf.kind == LeafKind::kString) {
      if (!strings) {
        const std::optional<uint64_t> size =
            files_->size_if_exists(kStringsFile);
        if (!size) {
          throw Error(CKPT_ERROR_DATA_LOSS,
                      what_ + ": " + files_->shown(kStringsFile) +
                          " is missing (the file of its strings)");
        }
        if (*size > kMaxStringsBytes) {
          throw Error(CKPT_ERROR_DATA_LOSS,
                      what_ + ": " + files_->shown(kStringsFile) +
                          " is damaged (" + std::to_string(*size) + " bytes)");
        }
        strings = ckpt::sdk::parse_json_from_disk<nlohmann::json>(
            files_->read(kStringsFile, 0, *size, "the file of its strings",
                         "text"),
            what_ + ": " + files_->shown(kStringsFile));
      }
      const nlohmann::json* v =
          at_pointer(*strings, orbax_param_name(leaf.path));
      if (!v || !v->is_string()) {
        throw Error(CKPT_ERROR_DATA_LOSS,
                    what_ + ": key path " + key_path_repr(leaf.path) + ": " +
                        files_->shown(kStringsFile) +
                        (v ? " holds no string for it" : " lacks it"));
      }
      leaf.string_value = v->get<std::string>();
      leaf.has_value = true;
      continue;
    }
    if (leaf.kind != LeafKind::kBool && leaf.kind != LeafKind::kInt &&
        leaf.kind != LeafKind::kDouble) {
      continue;
    }
    // A scalar: a 0-d array whose dtype says which kind.
    const zarr::ArrayMetadata& m = array_of(leaf).metadata;
    if (!m.shape.empty()) {
      throw Error(CKPT_ERROR_DATA_LOSS,
                  where(leaf) + ": a scalar stored as an array of rank " +
                      std::to_string(m.shape.size()));
    }
    if (m.dtype == CKPT_DTYPE_COMPLEX64 || m.dtype == CKPT_DTYPE_COMPLEX128) {
      throw Error(CKPT_ERROR_UNIMPLEMENTED,
                  where(leaf) +
                      ": a complex scalar (ckpt's scalars are "
                      "bool, int and double)");
    }
    LeafRecord as_array = leaf;
    as_array.kind = LeafKind::kArray;
    as_array.dtype = m.dtype;
    as_array.shape = {};
    unsigned char element[16] = {};
    read(as_array, element);
    if (m.dtype == CKPT_DTYPE_BOOL) {
      leaf.kind = LeafKind::kBool;
      leaf.bool_value = element[0] != 0;
    } else if (is_integer(m.dtype)) {
      leaf.kind = LeafKind::kInt;
      cast_elements(m.dtype, element, CKPT_DTYPE_INT64, &leaf.int_value, 1);
    } else {
      leaf.kind = LeafKind::kDouble;
      cast_elements(m.dtype, element, CKPT_DTYPE_FLOAT64, &leaf.double_value,
                    1);
    }
    leaf.has_value = true;
  }
}

void OrbaxStorage::check(const LeafRecord& leaf) const {
  if (!every_chunk_stored_) return;
  const std::string name = orbax_param_name(leaf.path);
  const std::string prefix = name.empty() ? "" : name + "/";
  zarr::for_each_chunk_key(
      arrays_.at(name)->metadata, [&](const std::string& key) {
        const bool stored =
            database_ ? database_->find(prefix + key).has_value()
                      : orbax::is_safe_relative_path(prefix + key) &&
                            files_->size_if_exists(prefix + key).has_value();
        if (!stored) {
          throw Error(CKPT_ERROR_DATA_LOSS,
                      where(leaf) + ": chunk " + key +
                          " is missing (the writer stored every chunk)");
        }
      });
}

void OrbaxStorage::read(const LeafRecord& leaf, void* out) const {
  const std::string name = orbax_param_name(leaf.path);
  const zarr::ArrayMetadata& m = arrays_.at(name)->metadata;
  const std::string prefix = name.empty() ? "" : name + "/";
  try {
    zarr::read_array(
        m, [&](const std::string& key) { return get(prefix + key); },
        every_chunk_stored_, out);
  } catch (const Damaged& e) {
    throw Error(CKPT_ERROR_DATA_LOSS, where(leaf) + ": " + e.what());
  } catch (const Unsupported& e) {
    throw Error(CKPT_ERROR_UNIMPLEMENTED,
                where(leaf) + ": " + e.what() + " is not read by ckpt");
  }
}

}  // namespace ckpt::pytree
