// Reading _METADATA: a streaming (SAX) parse straight into LeafRecords.
// A JSON document of every entry would cost tens of allocations per leaf
// and keep the entries' order only at quadratic cost.
#include <ckpt/sdk/boxes.h>
#include <ckpt/sdk/error.h>
#include <ckpt/sdk/json.h>
#include <ckpt/sdk/value.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "records/format_errors.h"
#include "records/tree_metadata.h"
#include "tree/cast.h"
#include "tree/dtypes.h"

namespace ckpt::pytree {

namespace {

using json = nlohmann::json;

constexpr const char* kStructureKey = "ckpt_array_file_structure";

// `text` for an error message: control characters (NUL would end the
// message at the ABI) replaced, at most 200 bytes.
std::string printable(const std::string& text) {
  std::string out = text.substr(0, 200);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  }
  return text.size() > 200 ? out + "..." : out;
}

// Parses 1 to 16 hex digits (an XXH3-64 as ckpt writes it).
bool parse_hex64(const std::string& text, uint64_t* value) {
  if (text.empty() || text.size() > 16) return false;
  uint64_t v = 0;
  for (char c : text) {
    int digit = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
    if (digit < 0) return false;
    v = v << 4 | static_cast<uint64_t>(digit);
  }
  *value = v;
  return true;
}

// One scalar JSON value.
struct Scalar {
  enum class Type {
    kNull,
    kBool,
    kInt,
    kUnsigned,
    kDouble,
    kString
  } type = Type::kNull;
  bool b = false;
  int64_t i = 0;
  uint64_t u = 0;
  double d = 0;
  std::string s;

  int64_t as_int() const {
    if (type == Type::kInt) return i;
    if (type == Type::kUnsigned) return static_cast<int64_t>(u);
    throw std::invalid_argument("expected an integer");
  }
  // A non-negative integer, for offsets and sizes: anything else is damage.
  uint64_t as_unsigned(const char* what) const {
    if (type == Type::kUnsigned) return u;
    if (type == Type::kInt && i >= 0) return static_cast<uint64_t>(i);
    throw Damaged(std::string(what) + " is not a non-negative integer");
  }
  const std::string& as_string() const {
    if (type != Type::kString) throw std::invalid_argument("expected a string");
    return s;
  }
  double as_double() const {
    switch (type) {
      case Type::kInt:
        return static_cast<double>(i);
      case Type::kUnsigned:
        return static_cast<double>(u);
      case Type::kDouble:
        return d;
      case Type::kString:
        if (s == "nan") return NAN;
        if (s == "inf") return INFINITY;
        if (s == "-inf") return -INFINITY;
        break;
      default:
        break;
    }
    throw std::invalid_argument("expected a number");
  }
};

// The fields of one entry's value_metadata, in any order.
struct RawValue {
  std::string value_type, kind, dtype, dataset, xxh3;
  std::vector<int64_t> shape, write_shape;
  bool has_shape = false, has_offset = false, has_storage = false;
  bool has_xxh3 = false;
  bool has_pieces = false;
  std::vector<StoredPiece> pieces;
  uint64_t offset = 0;
  bool has_value = false;
  Scalar value;
};

// The pieces of the sharded array `leaf`, validated: each names a process
// in range, and together they tile the global shape.
void finish_pieces(const RawValue& raw, LeafRecord& leaf) {
  if (raw.has_offset) throw Damaged("a sharded array with a packed offset");
  if (leaf.shape.empty()) throw Damaged("a sharded array of rank 0");
  for (const StoredPiece& p : raw.pieces) {
    if (p.process < 0 || p.process > kMaxProcess) {
      throw Damaged("a piece of process " + std::to_string(p.process));
    }
  }
  const std::string problem = ckpt::sdk::tiling_problem(raw.pieces, leaf.shape);
  if (!problem.empty()) throw Damaged("storage.pieces: " + problem);
  leaf.sharded = true;
  leaf.pieces = raw.pieces;
}

// The array fields of `raw`, validated: no shape, dtype, dataset, offset
// or checksum ckpt would not write.
void finish_array(const RawValue& raw, LeafRecord& leaf) {
  leaf.kind = LeafKind::kArray;
  leaf.shape = raw.has_shape ? raw.shape : raw.write_shape;
  if (leaf.shape.size() > kMaxRank) {
    throw Damaged("rank " + std::to_string(leaf.shape.size()) +
                  " is above HDF5's limit of " + std::to_string(kMaxRank));
  }
  for (int64_t d : leaf.shape) {
    if (d < 0) throw Damaged("negative dimension " + std::to_string(d));
  }
  if (!raw.dtype.empty()) {
    leaf.dtype = dtype_from_name(raw.dtype);
    if (!is_valid_dtype(leaf.dtype)) {
      leaf.dtype = CKPT_DTYPE_INVALID;
      throw Damaged("unknown dtype \"" + printable(raw.dtype) + "\"");
    }
  }
  // Orbax records no dtype: count bytes at one per element then.
  uint64_t item =
      leaf.dtype == CKPT_DTYPE_INVALID ? 1 : ckpt::sdk::dtype_size(leaf.dtype);
  uint64_t count = 0;
  if (!checked_size(leaf.shape, item, &count, nullptr)) {
    throw Damaged("the shape is too large for any array");
  }
  if (raw.has_storage) {
    const std::string& dataset = raw.dataset;
    if (!dataset.empty() &&
        (dataset[0] != '/' || dataset.size() > kMaxDatasetPath ||
         dataset.find('\0') != std::string::npos)) {
      throw Damaged("storage.dataset \"" + printable(dataset) +
                    "\" is not an HDF5 dataset path");
    }
    leaf.location.dataset = dataset;
    leaf.location.packed = raw.has_offset;
    leaf.location.offset = raw.offset;
    if (raw.has_offset &&
        raw.offset > static_cast<uint64_t>(INT64_MAX) - count) {
      throw Damaged("storage.offset " + std::to_string(raw.offset) +
                    " is out of range");
    }
  }
  if (raw.has_pieces) finish_pieces(raw, leaf);
  if (raw.has_xxh3) {
    if (!parse_hex64(raw.xxh3, &leaf.xxh3)) {
      throw Damaged("bad xxh3 checksum \"" + printable(raw.xxh3) + "\"");
    }
    leaf.has_checksum = true;
  }
}

void finish_leaf(const RawValue& raw, LeafRecord& leaf) {
  leaf.value_type = raw.value_type;
  const std::string& type = raw.value_type;
  if (type.empty()) throw std::invalid_argument("no value_type");
  if (type == kNoneValueType) {
    leaf.kind = LeafKind::kNone;
  } else if (type == kDictValueType) {
    leaf.kind = LeafKind::kEmptyDict;
  } else if (type == kListValueType || type == "Tuple") {
    leaf.kind = LeafKind::kEmptyList;
  } else if (type == kStringValueType) {
    leaf.kind = LeafKind::kString;
    leaf.has_value = raw.has_value;
    if (raw.has_value) leaf.string_value = raw.value.as_string();
  } else if (type == kScalarValueType) {
    // Orbax does not record which scalar kind; a number is the best guess.
    leaf.kind = raw.kind == "bool"  ? LeafKind::kBool
                : raw.kind == "int" ? LeafKind::kInt
                                    : LeafKind::kDouble;
    leaf.has_value = raw.has_value;
    if (raw.has_value) {
      if (leaf.kind == LeafKind::kBool) {
        if (raw.value.type != Scalar::Type::kBool)
          throw std::invalid_argument("expected a bool");
        leaf.bool_value = raw.value.b;
      } else if (leaf.kind == LeafKind::kInt) {
        leaf.int_value = raw.value.as_int();
      } else {
        leaf.double_value = raw.value.as_double();
      }
    }
  } else {
    // Every other value_type is an array: "np.ndarray", "jax.Array", ...
    finish_array(raw, leaf);
  }
}

// Frames: [root, "tree_metadata", entry, "key_metadata" | "value_metadata",
// then deeper], and [root, "ckpt_array_file_structure", "extents", pair].
// Only the paths below are read; everything else is skipped.
class Reader : public nlohmann::json_sax<json> {
 public:
  explicit Reader(TreeMetadata& out) : out_(out) {}

  std::string where = "the tree metadata";
  bool ocdbt = false, zarr3 = false, has_format = false;
  bool has_structure_size = false, has_structure_xxh3 = false;

  bool null() override { return scalar(Scalar{}); }
  bool boolean(bool v) override {
    Scalar s;
    s.type = Scalar::Type::kBool;
    s.b = v;
    return scalar(s);
  }
  bool number_integer(number_integer_t v) override {
    Scalar s;
    s.type = Scalar::Type::kInt;
    s.i = v;
    return scalar(s);
  }
  bool number_unsigned(number_unsigned_t v) override {
    Scalar s;
    s.type = Scalar::Type::kUnsigned;
    s.u = v;
    return scalar(s);
  }
  bool number_float(number_float_t v, const string_t&) override {
    Scalar s;
    s.type = Scalar::Type::kDouble;
    s.d = v;
    return scalar(s);
  }
  bool string(string_t& v) override {
    Scalar s;
    s.type = Scalar::Type::kString;
    s.s = std::move(v);
    return scalar(s);
  }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return open(false); }
  bool start_array(std::size_t) override { return open(true); }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& e) override {
    throw std::invalid_argument("not JSON at byte " + std::to_string(position) +
                                ": " + e.what());
  }

 private:
  struct Frame {
    std::string name;
    bool is_array;
  };

  const std::string& name_here() const {
    static const std::string kElement = "[]";
    return !frames_.empty() && frames_.back().is_array ? kElement : key_;
  }
  bool in_tree() const {
    return frames_.size() >= 2 && frames_[1].name == "tree_metadata";
  }
  // Inside "storage": {"pieces": [...]} of an entry's value_metadata, at
  // `depth`: 6 the list, 7 a piece, 8 a piece's offset or shape.
  bool in_pieces(size_t depth) const {
    return in_tree() && frames_.size() == depth && depth >= 6 &&
           frames_[3].name == "value_metadata" &&
           frames_[4].name == "storage" && frames_[5].name == "pieces";
  }
  bool in_structure() const {
    return frames_.size() >= 2 && frames_[1].name == kStructureKey;
  }
  // Inside "extents" of the structure record, at its depth (3) or in one
  // [offset, length] pair (4).
  bool in_extents(size_t depth) const {
    return in_structure() && frames_.size() == depth &&
           frames_[2].name == "extents";
  }

  bool open(bool is_array) {
    frames_.push_back({frames_.empty() ? "" : name_here(), is_array});
    if (frames_.size() == 3 && in_tree()) {
      if (is_array) throw std::invalid_argument("an entry is not an object");
      where = "entry " + printable(frames_[2].name);
      leaf_ = LeafRecord();
      raw_ = RawValue();
    }
    if (frames_.size() == 5 && in_tree() && frames_[3].name == "key_metadata") {
      if (leaf_.path.size() >= kMaxTreeDepth) {
        throw Damaged("a key path deeper than " +
                      std::to_string(kMaxTreeDepth) + " keys");
      }
      leaf_.path.emplace_back();
    }
    if (frames_.size() == 5 && in_tree() && frames_[4].name == "storage") {
      raw_.has_storage = true;
    }
    if (in_pieces(6)) {
      if (!is_array) throw Damaged("storage.pieces is not a list");
      raw_.has_pieces = true;
    } else if (in_pieces(7)) {
      if (is_array) throw Damaged("a piece is not an object");
      if (raw_.pieces.size() >= kMaxPieces) {
        throw Damaged("more than " + std::to_string(kMaxPieces) + " pieces");
      }
      raw_.pieces.emplace_back();
    } else if (in_pieces(8) && !is_array) {
      throw Damaged("a piece's offset or shape is not a list");
    }
    open_structure(is_array);
    return true;
  }

  void open_structure(bool is_array) {
    if (!in_structure()) return;
    if (frames_.size() == 2) {
      where = kStructureKey;
      if (is_array) throw Damaged("not an object");
      out_.has_structure = true;
    } else if (in_extents(3)) {
      if (!is_array) throw Damaged("extents is not a list");
    } else if (in_extents(4)) {
      if (!is_array) throw Damaged("an extent is not an [offset, length] pair");
      out_.structure.extents.emplace_back();
      pair_fields_ = 0;
    }
  }

  bool close() {
    if (frames_.size() == 3 && in_tree()) {
      for (const KeyEntry& e : leaf_.path) {
        if (e.key.find('\0') != std::string::npos) {
          throw Unsupported(
              "a key holds a NUL character, which the plugin ABI's "
              "NUL-terminated keys cannot carry");
        }
      }
      finish_leaf(raw_, leaf_);
      out_.leaves.push_back(std::move(leaf_));
    }
    if (in_extents(4) && pair_fields_ != 2) {
      throw Damaged("an extent is not an [offset, length] pair");
    }
    if (frames_.size() == 2 && frames_[1].name == "tree_metadata")
      saw_tree_ = true;
    frames_.pop_back();
    return true;
  }

  // A value inside "ckpt_array_file_structure" at `depth`.
  void structure_scalar(const Scalar& v, const std::string& name,
                        size_t depth) {
    if (depth == 2 && name == "size") {
      out_.structure.size = v.as_unsigned("size");
      has_structure_size = true;
    } else if (depth == 2 && name == "xxh3") {
      if (v.type != Scalar::Type::kString ||
          !parse_hex64(v.s, &out_.structure.xxh3)) {
        throw Damaged("bad xxh3 checksum");
      }
      has_structure_xxh3 = true;
    } else if (in_extents(4)) {
      Extent& e = out_.structure.extents.back();
      if (pair_fields_ >= 2) {
        throw Damaged("an extent is not an [offset, length] pair");
      }
      (pair_fields_++ == 0 ? e.offset : e.length) =
          v.as_unsigned("an extent's offset or length");
    } else if (in_extents(3)) {
      throw Damaged("an extent is not an [offset, length] pair");
    }
  }

  // A value inside a piece of "storage.pieces", at `depth` (7 or 8).
  void piece_scalar(const Scalar& v, const std::string& name, size_t depth) {
    if (depth == 6) throw Damaged("a piece is not an object");
    StoredPiece& piece = raw_.pieces.back();
    if (depth == 7) {
      if (name == "process") piece.process = v.as_int();
      return;
    }
    const std::string& field = frames_[7].name;
    std::vector<int64_t>* dims = field == "offset"  ? &piece.offset
                                 : field == "shape" ? &piece.shape
                                                    : nullptr;
    if (!dims) return;
    if (dims->size() >= kMaxRank) {
      throw Damaged("a piece of rank above HDF5's limit of " +
                    std::to_string(kMaxRank));
    }
    dims->push_back(v.as_int());
  }

  bool scalar(const Scalar& v) {
    const std::string& name = name_here();
    size_t depth = frames_.size();
    if (depth == 1) {
      if (name == "use_ocdbt" && v.type == Scalar::Type::kBool) ocdbt = v.b;
      if (name == "use_zarr3" && v.type == Scalar::Type::kBool) zarr3 = v.b;
      if (name == "store_array_data_equal_to_fill_value" &&
          v.type == Scalar::Type::kBool) {
        out_.every_chunk_stored = v.b;
      }
      if (name == "ckpt_storage_format") {
        out_.storage_format = v.as_string();
        has_format = true;
      }
      if (name == "ckpt_array_file") out_.array_file = v.as_string();
      if (name == "ckpt_pytree_format") {
        where = "ckpt_pytree_format";
        if (v.type != Scalar::Type::kInt && v.type != Scalar::Type::kUnsigned) {
          throw Damaged("not an integer");
        }
        out_.format = v.type == Scalar::Type::kInt
                          ? v.i
                          : static_cast<int64_t>(std::min<uint64_t>(
                                v.u, static_cast<uint64_t>(INT64_MAX)));
        if (out_.format <= 0) throw Damaged("not a format number");
      }
      if (name == kStructureKey) throw Damaged("not an object");
      return true;
    }
    if (in_structure()) {
      structure_scalar(v, name, depth);
      return true;
    }
    if (!in_tree() || depth < 4) return true;
    if (in_pieces(depth)) {
      piece_scalar(v, name, depth);
      return true;
    }
    const std::string& section = frames_[3].name;
    if (section == "key_metadata" && depth == 5) {
      KeyEntry& e = leaf_.path.back();
      if (name == "key")
        e.key =
            v.type == Scalar::Type::kString ? v.s : std::to_string(v.as_int());
      if (name == "key_type")
        e.type = v.as_int() == 1 ? KeyType::kSequence : KeyType::kDict;
    } else if (section == "value_metadata" && depth == 4) {
      if (name == "value_type") raw_.value_type = v.as_string();
      if (name == "kind") raw_.kind = v.as_string();
      if (name == "dtype") raw_.dtype = v.as_string();
      if (name == "xxh3") {
        raw_.xxh3 = v.as_string();
        raw_.has_xxh3 = true;
      }
      if (name == "value") {
        raw_.has_value = true;
        raw_.value = v;
      }
    } else if (section == "value_metadata" && depth == 5) {
      const std::string& field = frames_[4].name;
      if (field == "shape" || field == "write_shape") {
        std::vector<int64_t>& dims =
            field == "shape" ? raw_.shape : raw_.write_shape;
        if (dims.size() >= kMaxRank) {
          throw Damaged("a shape of rank above HDF5's limit of " +
                        std::to_string(kMaxRank));
        }
        dims.push_back(v.as_int());
        if (field == "shape") raw_.has_shape = true;
      } else if (field == "storage") {
        if (name == "dataset") raw_.dataset = v.as_string();
        if (name == "offset") {
          raw_.has_offset = true;
          raw_.offset = v.as_unsigned("storage.offset");
        }
      }
    }
    return true;
  }

 public:
  bool saw_tree() const { return saw_tree_; }

 private:
  TreeMetadata& out_;
  std::vector<Frame> frames_;
  std::string key_;
  LeafRecord leaf_;
  RawValue raw_;
  size_t pair_fields_ = 0;
  bool saw_tree_ = false;
};

// Checks what the parsed metadata promises as a whole: a plain array file
// name, a dtype and a dataset for each of ckpt's arrays, one dtype per
// packed dataset, and what the format marker guarantees. Throws Damaged or
// Unsupported.
void validate(const TreeMetadata& out, const Reader& reader) {
  if (out.format > kPyTreeFormat) {
    throw Unsupported("ckpt_pytree_format " + std::to_string(out.format) +
                      " is newer than this ckpt reads (" +
                      std::to_string(kPyTreeFormat) + ")");
  }
  if (out.format != 0 && out.format < kCheckedPyTreeFormat) {
    throw Damaged("unknown ckpt_pytree_format " + std::to_string(out.format));
  }
  if (out.format != 0 && !reader.has_format) {
    throw Damaged("ckpt_pytree_format without ckpt_storage_format");
  }
  // One record per leaf: a second one would replace the first in the tree.
  std::set<std::string> paths;
  for (const LeafRecord& leaf : out.leaves) {
    std::string encoded;  // unambiguous: type, length and bytes of each key
    for (const KeyEntry& k : leaf.path) {
      encoded += std::to_string(static_cast<int>(k.type)) + ":" +
                 std::to_string(k.key.size()) + ":" + k.key;
    }
    if (!paths.insert(encoded).second) {
      throw Damaged("key path " + key_path_repr(leaf.path) +
                    " is recorded twice");
    }
  }
  if (!reader.has_format) return;  // Orbax: its arrays are not read here
  // ckpt records every array's dtype, in every format (an unknown
  // value_type is taken for an array, and must have one too).
  for (const LeafRecord& leaf : out.leaves) {
    if (leaf.kind == LeafKind::kArray && leaf.dtype == CKPT_DTYPE_INVALID) {
      throw Damaged("key path " + key_path_repr(leaf.path) + ": no dtype");
    }
  }
  // From format 3 on, where arrays are and their checksums are in the tree
  // index alone (tree_index.h), not here.
  if (out.format >= kPyTreeFormat) return;
  if (!is_plain_file_name(out.array_file)) {
    throw Damaged("ckpt_array_file \"" + printable(out.array_file) +
                  "\" is not a plain file name in the checkpointable's "
                  "folder");
  }
  if (out.has_structure) {
    if (!reader.has_structure_size || !reader.has_structure_xxh3) {
      throw Damaged(std::string(kStructureKey) + " lacks its size or xxh3");
    }
  } else if (out.format != 0) {
    throw Damaged(std::string("the array file's structure record (") +
                  kStructureKey + ") is missing");
  }
  if (out.format != 0 && !is_ckpt_storage_format(out.storage_format)) {
    throw Damaged("ckpt_pytree_format with storage format \"" +
                  printable(out.storage_format) + "\"");
  }
  if (!is_ckpt_storage_format(out.storage_format)) return;
  std::map<std::string, ckpt_dtype> packed_dtype;
  for (const LeafRecord& leaf : out.leaves) {
    if (leaf.kind != LeafKind::kArray) continue;
    const std::string where = "key path " + key_path_repr(leaf.path) + ": ";
    if (leaf.location.dataset.empty()) {
      throw Damaged(where + "no storage.dataset");
    }
    if (out.format != 0 && !leaf.has_checksum && !leaf.sharded) {
      throw Damaged(where + "no xxh3 checksum");
    }
    if (leaf.location.packed) {
      auto [it, fresh] =
          packed_dtype.emplace(leaf.location.dataset, leaf.dtype);
      if (!fresh && it->second != leaf.dtype) {
        throw Damaged(where + "the packed dataset " + leaf.location.dataset +
                      " holds arrays of two dtypes");
      }
    }
  }
}

}  // namespace

TreeMetadata parse_tree_metadata(const std::string& text,
                                 const std::string& what) {
  ckpt::sdk::check_json_depth(text, what);
  TreeMetadata out;
  Reader reader(out);
  try {
    json::sax_parse(text, &reader);
    if (!reader.saw_tree())
      throw std::invalid_argument("no tree_metadata object");
    reader.where.clear();
    validate(out, reader);
  } catch (const Damaged& e) {
    throw ckpt::sdk::Error(
        CKPT_ERROR_DATA_LOSS,
        what + " is damaged (" +
            (reader.where.empty() ? "" : reader.where + ": ") + e.what() + ")");
  } catch (const Unsupported& e) {
    throw ckpt::sdk::Error(
        CKPT_ERROR_UNIMPLEMENTED,
        what + ": " + (reader.where.empty() ? "" : reader.where + ": ") +
            e.what());
  } catch (const ckpt::sdk::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw ckpt::sdk::Error(CKPT_ERROR_INVALID_LAYOUT,
                           what + " is not valid pytree metadata (" +
                               reader.where + ": " + e.what() + ")");
  }
  if (!reader.has_format) {
    out.storage_format = std::string("orbax.") +
                         (reader.ocdbt ? "ocdbt+" : "tensorstore+") +
                         (reader.zarr3 ? "zarr3" : "zarr");
    out.array_file.clear();
  }
  return out;
}

}  // namespace ckpt::pytree
