#include "tree_metadata.h"

#include <ckpt/sdk/error.h>

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "dtypes.h"

namespace ckpt_pytree {

namespace {

using ckpt::sdk::Error;
using ordered_json = nlohmann::ordered_json;

// Orbax's value_type strings.
constexpr const char* kArrayValueType = "np.ndarray";
constexpr const char* kScalarValueType = "scalar";
constexpr const char* kStringValueType = "string";
constexpr const char* kNoneValueType = "None";
constexpr const char* kDictValueType = "Dict";
constexpr const char* kListValueType = "List";

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

// JSON has no NaN or infinities: those are written as strings.
ordered_json double_to_json(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

double double_from_json(const ordered_json& j) {
  if (j.is_number()) return j.get<double>();
  std::string s = j.get<std::string>();
  if (s == "nan") return NAN;
  if (s == "inf") return INFINITY;
  if (s == "-inf") return -INFINITY;
  throw std::invalid_argument("not a number: " + s);
}

ordered_json value_metadata(const LeafRecord& leaf) {
  ordered_json v = ordered_json::object();
  switch (leaf.kind) {
    case LeafKind::kArray: {
      v["value_type"] = kArrayValueType;
      v["skip_deserialize"] = false;
      v["write_shape"] = leaf.shape;
      v["dtype"] = dtype_name(leaf.dtype);
      v["shape"] = leaf.shape;
      ordered_json storage = {{"format", kStorageFormat},
                              {"dataset", leaf.location.dataset}};
      if (leaf.location.packed) storage["offset"] = leaf.location.offset;
      v["storage"] = storage;
      v["xxh3"] = hex64(leaf.xxh3);
      return v;
    }
    case LeafKind::kBool:
    case LeafKind::kInt:
    case LeafKind::kDouble:
      v["value_type"] = kScalarValueType;
      v["skip_deserialize"] = false;
      if (leaf.kind == LeafKind::kBool) {
        v["kind"] = "bool";
        v["value"] = leaf.bool_value;
      } else if (leaf.kind == LeafKind::kInt) {
        v["kind"] = "int";
        v["value"] = leaf.int_value;
      } else {
        v["kind"] = "double";
        v["value"] = double_to_json(leaf.double_value);
      }
      return v;
    case LeafKind::kString:
      v["value_type"] = kStringValueType;
      v["skip_deserialize"] = false;
      v["value"] = leaf.string_value;
      return v;
    case LeafKind::kNone: v["value_type"] = kNoneValueType; break;
    case LeafKind::kEmptyDict: v["value_type"] = kDictValueType; break;
    case LeafKind::kEmptyList: v["value_type"] = kListValueType; break;
  }
  v["skip_deserialize"] = true;
  return v;
}

void parse_value(const ordered_json& v, LeafRecord& leaf) {
  leaf.value_type = v.at("value_type").get<std::string>();
  const std::string& type = leaf.value_type;
  if (type == kNoneValueType) {
    leaf.kind = LeafKind::kNone;
  } else if (type == kDictValueType) {
    leaf.kind = LeafKind::kEmptyDict;
  } else if (type == kListValueType || type == "Tuple") {
    leaf.kind = LeafKind::kEmptyList;
  } else if (type == kStringValueType) {
    leaf.kind = LeafKind::kString;
    if (v.contains("value")) {
      leaf.has_value = true;
      leaf.string_value = v["value"].get<std::string>();
    }
  } else if (type == kScalarValueType) {
    // Orbax does not record which scalar kind; a number is the best guess.
    std::string kind = v.value("kind", "double");
    leaf.kind = kind == "bool"  ? LeafKind::kBool
                : kind == "int" ? LeafKind::kInt
                                : LeafKind::kDouble;
    if (v.contains("value")) {
      leaf.has_value = true;
      const ordered_json& x = v["value"];
      if (leaf.kind == LeafKind::kBool) leaf.bool_value = x.get<bool>();
      if (leaf.kind == LeafKind::kInt) leaf.int_value = x.get<int64_t>();
      if (leaf.kind == LeafKind::kDouble) leaf.double_value = double_from_json(x);
    }
  } else {
    // Every other value_type is an array: "np.ndarray", "jax.Array", ...
    leaf.kind = LeafKind::kArray;
    const char* shape_key = v.contains("shape") ? "shape" : "write_shape";
    if (v.contains(shape_key) && !v[shape_key].is_null()) {
      leaf.shape = v[shape_key].get<std::vector<int64_t>>();
    }
    for (int64_t d : leaf.shape) {
      if (d < 0) throw std::invalid_argument("negative dimension");
    }
    if (v.contains("dtype")) {
      leaf.dtype = dtype_from_name(v["dtype"].get<std::string>());
      if (leaf.dtype == CKPT_DTYPE_INVALID) {
        throw std::invalid_argument("unknown dtype " + v["dtype"].dump());
      }
    }
    if (v.contains("storage")) {
      const ordered_json& s = v["storage"];
      leaf.location.dataset = s.at("dataset").get<std::string>();
      if (s.contains("offset")) {
        leaf.location.packed = true;
        leaf.location.offset = s["offset"].get<uint64_t>();
      }
    }
    if (v.contains("xxh3")) {
      std::string hex = v["xxh3"].get<std::string>();
      char* end = nullptr;
      leaf.xxh3 = std::strtoull(hex.c_str(), &end, 16);
      if (hex.empty() || *end != '\0') {
        throw std::invalid_argument("bad xxh3 checksum " + hex);
      }
      leaf.has_checksum = true;
    }
  }
}

}  // namespace

std::string format_tree_metadata(const TreeMetadata& metadata) {
  ordered_json tree = ordered_json::object();
  for (const LeafRecord& leaf : metadata.leaves) {
    ordered_json keys = ordered_json::array();
    for (const KeyEntry& e : leaf.path) {
      keys.push_back({{"key", e.key}, {"key_type", static_cast<int>(e.type)}});
    }
    tree[key_path_repr(leaf.path)] = {{"key_metadata", keys},
                                      {"value_metadata", value_metadata(leaf)}};
  }
  ordered_json root = {
      {"tree_metadata", tree},
      {"use_ocdbt", false},
      {"use_zarr3", false},
      {"store_array_data_equal_to_fill_value", false},
      {"custom_metadata", nullptr},
      {"ckpt_storage_format", metadata.storage_format},
      {"ckpt_array_file", metadata.array_file},
  };
  return root.dump(1);
}

TreeMetadata parse_tree_metadata(const std::string& text,
                                 const std::string& what) {
  TreeMetadata out;
  std::string where = "the tree metadata";
  try {
    ordered_json root = ordered_json::parse(text);
    if (!root.is_object() || !root.contains("tree_metadata") ||
        !root["tree_metadata"].is_object()) {
      throw std::invalid_argument("no tree_metadata object");
    }
    if (root.contains("ckpt_storage_format")) {
      out.storage_format = root["ckpt_storage_format"].get<std::string>();
      out.array_file = root.value("ckpt_array_file", std::string(kArrayFile));
    } else {
      bool ocdbt = root.value("use_ocdbt", false);
      bool zarr3 = root.value("use_zarr3", false);
      out.storage_format = std::string("orbax.") +
                           (ocdbt ? "ocdbt+" : "tensorstore+") +
                           (zarr3 ? "zarr3" : "zarr");
      out.array_file.clear();
    }
    for (const auto& [repr, entry] : root["tree_metadata"].items()) {
      where = "entry " + repr;
      LeafRecord leaf;
      for (const ordered_json& k : entry.at("key_metadata")) {
        KeyEntry e;
        e.key = k.at("key").is_string() ? k["key"].get<std::string>()
                                        : k["key"].dump();
        int type = k.value("key_type", 2);
        e.type = type == 1 ? KeyType::kSequence : KeyType::kDict;
        leaf.path.push_back(std::move(e));
      }
      parse_value(entry.at("value_metadata"), leaf);
      out.leaves.push_back(std::move(leaf));
    }
  } catch (const std::exception& e) {
    throw Error(CKPT_ERROR_INVALID_LAYOUT,
                what + " is not valid pytree metadata (" + where + ": " +
                    e.what() + ")");
  }
  return out;
}

}  // namespace ckpt_pytree
