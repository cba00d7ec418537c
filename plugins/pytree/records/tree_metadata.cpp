#include "records/tree_metadata.h"

#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string_view>

#include "tree/dtypes.h"

namespace ckpt::pytree {

namespace {

// _METADATA is written as text directly, appending to one buffer: trees have
// tens of thousands of leaves, and building a JSON document (or a JSON
// value per string) first costs several times the arrays' own index.
class Writer {
 public:
  std::string out;

  void raw(std::string_view s) { out.append(s); }
  // A JSON string. Bytes of 0x80 and above pass as they are (the save
  // checked that keys and strings are UTF-8).
  void string(std::string_view s) {
    static const char kHex[] = "0123456789abcdef";
    out += '"';
    size_t plain = 0;  // start of the run not yet appended
    for (size_t i = 0; i < s.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(s[i]);
      if (c >= 0x20 && c != '"' && c != '\\') continue;
      out.append(s.data() + plain, i - plain);
      plain = i + 1;
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\r':
          out += "\\r";
          break;
        default: {
          const char escaped[6] = {'\\', 'u',          '0',
                                   '0',  kHex[c >> 4], kHex[c & 15]};
          out.append(escaped, 6);
        }
      }
    }
    out.append(s.data() + plain, s.size() - plain);
    out += '"';
  }
  void key(std::string_view k) {
    out += '"';
    out += k;
    out += "\": ";
  }
  void integer(int64_t v) {
    char buf[24];
    const auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
    out.append(buf, end);
  }
  void unsigned_integer(uint64_t v) {
    char buf[24];
    const auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
    out.append(buf, end);
  }
  // 16 hex digits, as ckpt writes every XXH3-64.
  void hex64(uint64_t v) {
    static const char kHex[] = "0123456789abcdef";
    char buf[18];
    buf[0] = buf[17] = '"';
    for (int i = 16; i >= 1; --i, v >>= 4) buf[i] = kHex[v & 15];
    out.append(buf, sizeof buf);
  }
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

// Whether _METADATA of `metadata` records where each array is stored and
// its checksum, and the array file's structure: before format 3; from 3 on
// those are in the tree index (tree_index.h) alone.
bool records_storage(const TreeMetadata& metadata) {
  return metadata.format < kPyTreeFormat;
}

// The "storage" object of an array leaf (formats before 3): where its
// bytes are, and the pieces of a sharded one.
void write_array_storage(Writer& w, const LeafRecord& leaf,
                         const TreeMetadata& metadata) {
  w.key("storage");
  w.out += "{";
  w.key("format");
  w.string(metadata.storage_format);
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
    w.unsigned_integer(leaf.location.offset);
  }
  w.out += "}";
}

// An array leaf's fields after "skip_deserialize".
void write_array_fields(Writer& w, const LeafRecord& leaf,
                        const TreeMetadata& metadata) {
  w.out += ", ";
  w.key("write_shape");
  w.shape(leaf.shape);
  w.out += ", ";
  w.key("dtype");
  w.out += '"';
  w.out += dtype_name(leaf.dtype);
  w.out += '"';
  w.out += ", ";
  w.key("shape");
  w.shape(leaf.shape);
  if (!records_storage(metadata)) return;
  w.out += ", ";
  write_array_storage(w, leaf, metadata);
  if (leaf.has_checksum) {  // ckpt always has one; older files may not
    w.out += ", ";
    w.key("xxh3");
    w.hex64(leaf.xxh3);
  }
}

void write_value_metadata(Writer& w, const LeafRecord& leaf,
                          const TreeMetadata& metadata) {
  w.out += "{";
  w.key("value_type");
  w.out += '"';
  w.out += value_type_of(leaf.kind);
  w.out += '"';
  bool empty = leaf.kind == LeafKind::kNone ||
               leaf.kind == LeafKind::kEmptyDict ||
               leaf.kind == LeafKind::kEmptyList;
  w.out += ", ";
  w.key("skip_deserialize");
  w.out += empty ? "true" : "false";
  switch (leaf.kind) {
    case LeafKind::kArray:
      write_array_fields(w, leaf, metadata);
      break;
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
  if (metadata.has_structure && records_storage(metadata)) {
    w.out += ",\n ";
    w.key("ckpt_array_file_structure");
    w.out += "{";
    w.key("size");
    w.unsigned_integer(metadata.structure.size);
    w.out += ", ";
    w.key("extents");
    w.out += "[";
    bool first = true;
    for (const Extent& e : metadata.structure.extents) {
      w.out += first ? "[" : ", [";
      first = false;
      w.unsigned_integer(e.offset);
      w.out += ", ";
      w.unsigned_integer(e.length);
      w.out += "]";
    }
    w.out += "], ";
    w.key("xxh3");
    w.hex64(metadata.structure.xxh3);
    w.out += "}";
  }
  w.out += "\n}\n";
  return std::move(w.out);
}

std::string format_tree_metadata_body(const TreeMetadata& metadata) {
  Writer w;
  w.out.reserve(metadata.leaves.size() * 384 + 512);
  w.out += "{\n ";
  w.key("tree_metadata");
  w.out += "{";
  bool first = true;
  std::string repr;  // reused: one key path's repr at a time
  for (const LeafRecord& leaf : metadata.leaves) {
    w.out += first ? "\n  " : ",\n  ";
    first = false;
    repr.clear();
    append_key_path_repr(leaf.path, repr);
    w.string(repr);
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
    write_value_metadata(w, leaf, metadata);
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
  return std::move(w.out);
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

}  // namespace ckpt::pytree
