#include "tree_metadata.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "dtypes.h"

namespace ckpt_pytree {

namespace {

// _METADATA is written as text directly: trees have tens of thousands of
// leaves, and building a JSON document first costs more than the arrays'
// own index.
class Writer {
 public:
  std::string out;

  void string(const std::string& s) { out += nlohmann::json(s).dump(); }
  void key(const char* k) {
    out += '"';
    out += k;
    out += "\": ";
  }
  void integer(int64_t v) { out += std::to_string(v); }
  void shape(const std::vector<int64_t>& dims) {
    out += '[';
    for (size_t i = 0; i < dims.size(); ++i) {
      if (i) out += ", ";
      integer(dims[i]);
    }
    out += ']';
  }
  // JSON has no NaN or infinities: those are written as strings.
  void real(double v) {
    if (std::isnan(v)) {
      out += "\"nan\"";
    } else if (std::isinf(v)) {
      out += v > 0 ? "\"inf\"" : "\"-inf\"";
    } else {
      out += nlohmann::json(v).dump();
    }
  }
};

const char* value_type_of(LeafKind kind) {
  switch (kind) {
    case LeafKind::kArray:
      return kArrayValueType;
    case LeafKind::kBool:
    case LeafKind::kInt:
    case LeafKind::kDouble:
      return kScalarValueType;
    case LeafKind::kString:
      return kStringValueType;
    case LeafKind::kNone:
      return kNoneValueType;
    case LeafKind::kEmptyDict:
      return kDictValueType;
    case LeafKind::kEmptyList:
      return kListValueType;
  }
  return kNoneValueType;
}

void write_value_metadata(Writer& w, const LeafRecord& leaf) {
  w.out += "{";
  w.key("value_type");
  w.string(value_type_of(leaf.kind));
  bool empty = leaf.kind == LeafKind::kNone ||
               leaf.kind == LeafKind::kEmptyDict ||
               leaf.kind == LeafKind::kEmptyList;
  w.out += ", ";
  w.key("skip_deserialize");
  w.out += empty ? "true" : "false";
  switch (leaf.kind) {
    case LeafKind::kArray: {
      char hex[17];
      std::snprintf(hex, sizeof hex, "%016" PRIx64, leaf.xxh3);
      w.out += ", ";
      w.key("write_shape");
      w.shape(leaf.shape);
      w.out += ", ";
      w.key("dtype");
      w.string(dtype_name(leaf.dtype));
      w.out += ", ";
      w.key("shape");
      w.shape(leaf.shape);
      w.out += ", ";
      w.key("storage");
      w.out += "{";
      w.key("format");
      w.string(kStorageFormat);
      w.out += ", ";
      w.key("dataset");
      w.string(leaf.location.dataset);
      if (leaf.sharded) {
        w.out += ", ";
        w.key("pieces");
        w.out += "[";
        for (size_t k = 0; k < leaf.pieces.size(); ++k) {
          const StoredPiece& p = leaf.pieces[k];
          w.out += k ? ", {" : "{";
          w.key("process");
          w.integer(p.process);
          w.out += ", ";
          w.key("offset");
          w.shape(p.offset);
          w.out += ", ";
          w.key("shape");
          w.shape(p.shape);
          w.out += "}";
        }
        w.out += "]";
      }
      if (leaf.location.packed) {
        w.out += ", ";
        w.key("offset");
        w.out += std::to_string(leaf.location.offset);
      }
      w.out += "}";
      if (leaf.has_checksum) {  // ckpt always has one; older files may not
        w.out += ", ";
        w.key("xxh3");
        w.out += '"';
        w.out += hex;
        w.out += '"';
      }
      break;
    }
    case LeafKind::kBool:
      w.out += ", \"kind\": \"bool\", ";
      w.key("value");
      w.out += leaf.bool_value ? "true" : "false";
      break;
    case LeafKind::kInt:
      w.out += ", \"kind\": \"int\", ";
      w.key("value");
      w.integer(leaf.int_value);
      break;
    case LeafKind::kDouble:
      w.out += ", \"kind\": \"double\", ";
      w.key("value");
      w.real(leaf.double_value);
      break;
    case LeafKind::kString:
      w.out += ", ";
      w.key("value");
      w.string(leaf.string_value);
      break;
    default:
      break;
  }
  w.out += "}";
}

}  // namespace

bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name.size() <= 255 && name != "." && name != ".." &&
         name.find_first_of(std::string("/\\\0", 3)) == std::string::npos;
}

std::string format_tree_metadata(const TreeMetadata& metadata) {
  return format_tree_metadata_body(metadata) +
         format_tree_metadata_end(metadata);
}

std::string format_tree_metadata_end(const TreeMetadata& metadata) {
  Writer w;
  if (metadata.format != 0) {
    w.out += ",\n ";
    w.key("ckpt_pytree_format");
    w.integer(metadata.format);
  }
  if (metadata.has_structure) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016" PRIx64, metadata.structure.xxh3);
    w.out += ",\n ";
    w.key("ckpt_array_file_structure");
    w.out += "{";
    w.key("size");
    w.out += std::to_string(metadata.structure.size);
    w.out += ", ";
    w.key("extents");
    w.out += "[";
    bool first = true;
    for (const Extent& e : metadata.structure.extents) {
      w.out += first ? "[" : ", [";
      first = false;
      w.out += std::to_string(e.offset);
      w.out += ", ";
      w.out += std::to_string(e.length);
      w.out += "]";
    }
    w.out += "], ";
    w.key("xxh3");
    w.out += '"';
    w.out += hex;
    w.out += "\"}";
  }
  w.out += "\n}\n";
  return w.out;
}

std::string format_tree_metadata_body(const TreeMetadata& metadata) {
  Writer w;
  w.out.reserve(metadata.leaves.size() * 256 + 512);
  w.out += "{\n ";
  w.key("tree_metadata");
  w.out += "{";
  bool first = true;
  for (const LeafRecord& leaf : metadata.leaves) {
    w.out += first ? "\n  " : ",\n  ";
    first = false;
    w.string(key_path_repr(leaf.path));
    w.out += ": {";
    w.key("key_metadata");
    w.out += "[";
    for (size_t i = 0; i < leaf.path.size(); ++i) {
      if (i) w.out += ", ";
      w.out += "{";
      w.key("key");
      w.string(leaf.path[i].key);
      w.out += ", ";
      w.key("key_type");
      w.integer(static_cast<int>(leaf.path[i].type));
      w.out += "}";
    }
    w.out += "], ";
    w.key("value_metadata");
    write_value_metadata(w, leaf);
    w.out += "}";
  }
  w.out += "\n },\n ";
  w.key("use_ocdbt");
  w.out += "false,\n ";
  w.key("use_zarr3");
  w.out += "false,\n ";
  w.key("store_array_data_equal_to_fill_value");
  w.out += "false,\n ";
  w.key("custom_metadata");
  w.out += "null,\n ";
  w.key("ckpt_storage_format");
  w.string(metadata.storage_format);
  w.out += ",\n ";
  w.key("ckpt_array_file");
  w.string(metadata.array_file);
  return w.out;
}

std::string process_array_file(int64_t process) {
  return kProcessArrayPrefix + std::to_string(process) + ".h5";
}

std::string process_metadata_file(int64_t process) {
  return std::string(kMetadataFile) + ".process_" + std::to_string(process);
}

KeyPath piece_path(const KeyPath& path, size_t k) {
  KeyPath out = path;
  out.push_back({std::to_string(k), KeyType::kDict});
  return out;
}

}  // namespace ckpt_pytree
