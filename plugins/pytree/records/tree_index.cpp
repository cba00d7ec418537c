#include "records/tree_index.h"

#include <ckpt/sdk/boxes.h>
#include <ckpt/sdk/dtype.h>
#include <ckpt/sdk/error.h>
#include <ckpt/sdk/files.h>
#include <ckpt/sdk/text.h>

#include <cstring>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "records/format_errors.h"
#include "tree/cast.h"
#include "tree/dtypes.h"

namespace ckpt::pytree {

namespace {

using ckpt::sdk::Error;
using ckpt::sdk::shape_text;

// The layout (README.md, "_TREE_INDEX"): after the magic, a sequence of
// fields, each an unsigned LEB128 varint, a byte, a little-endian 64-bit
// word, or bytes (a varint length, then the bytes).
constexpr std::string_view kMagic = "CKPTTREE";
constexpr uint64_t kIndexVersion = 1;

// Leaf kinds in the index (LeafKind, numbered for the file).
enum : uint8_t {
  kIndexArray = 1,
  kIndexBool = 2,
  kIndexInt = 3,
  kIndexDouble = 4,
  kIndexString = 5,
  kIndexNone = 6,
  kIndexEmptyDict = 7,
  kIndexEmptyList = 8,
};

// Array flags.
enum : uint8_t {
  kFlagPacked = 1,
  kFlagChecksum = 2,
  kFlagSharded = 4,
};

uint8_t index_kind(LeafKind kind) {
  switch (kind) {
    case LeafKind::kArray:
      return kIndexArray;
    case LeafKind::kBool:
      return kIndexBool;
    case LeafKind::kInt:
      return kIndexInt;
    case LeafKind::kDouble:
      return kIndexDouble;
    case LeafKind::kString:
      return kIndexString;
    case LeafKind::kNone:
      return kIndexNone;
    case LeafKind::kEmptyDict:
      return kIndexEmptyDict;
    case LeafKind::kEmptyList:
      return kIndexEmptyList;
  }
  return kIndexNone;
}

// ------------------------------------------------------------- writing

class Encoder {
 public:
  std::string out;

  void varint(uint64_t v) {
    char buf[10];
    size_t n = 0;
    while (v >= 0x80) {
      buf[n++] = static_cast<char>(v | 0x80);
      v >>= 7;
    }
    buf[n++] = static_cast<char>(v);
    out.append(buf, n);
  }
  void signed_varint(int64_t v) {  // zigzag
    varint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
  }
  void byte(uint8_t v) { out += static_cast<char>(v); }
  void fixed64(uint64_t v) {
    char buf[8];
    for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>(v >> (8 * i));
    out.append(buf, 8);
  }
  void bytes(std::string_view s) {
    varint(s.size());
    out.append(s);
  }
  void dims(const std::vector<int64_t>& d) {
    for (int64_t v : d) varint(static_cast<uint64_t>(v));
  }
};

void encode_leaf(const LeafRecord& leaf, uint32_t dataset, Encoder& e) {
  e.byte(index_kind(leaf.kind));
  switch (leaf.kind) {
    case LeafKind::kArray: {
      e.byte(static_cast<uint8_t>(leaf.dtype));
      e.varint(leaf.shape.size());
      e.dims(leaf.shape);
      uint8_t flags = 0;
      if (leaf.location.packed) flags |= kFlagPacked;
      if (leaf.has_checksum) flags |= kFlagChecksum;
      if (leaf.sharded) flags |= kFlagSharded;
      e.byte(flags);
      e.varint(dataset);
      if (leaf.location.packed) e.varint(leaf.location.offset);
      if (leaf.has_checksum) e.fixed64(leaf.xxh3);
      if (leaf.sharded) {
        e.varint(leaf.pieces.size());
        for (const StoredPiece& p : leaf.pieces) {
          e.varint(static_cast<uint64_t>(p.process));
          e.dims(p.offset);
          e.dims(p.shape);
        }
      }
      break;
    }
    case LeafKind::kBool:
      e.byte(leaf.bool_value ? 1 : 0);
      break;
    case LeafKind::kInt:
      e.signed_varint(leaf.int_value);
      break;
    case LeafKind::kDouble: {
      uint64_t bits;
      std::memcpy(&bits, &leaf.double_value, sizeof bits);
      e.fixed64(bits);
      break;
    }
    case LeafKind::kString:
      e.bytes(leaf.string_value);
      break;
    default:
      break;
  }
}

// ------------------------------------------------------------- reading

class Decoder {
 public:
  explicit Decoder(std::string_view bytes) : p_(bytes) {}

  size_t remaining() const { return p_.size() - at_; }
  uint8_t byte() {
    need(1);
    return static_cast<uint8_t>(p_[at_++]);
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      const uint8_t b = byte();
      if (shift == 63 && b > 1) throw Damaged("a number overflows 64 bits");
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    throw Damaged("a number overflows 64 bits");
  }
  int64_t signed_varint() {
    const uint64_t v = varint();
    return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1));
  }
  // A varint that counts things of at least `min_bytes` each still to come.
  uint64_t count(size_t min_bytes) {
    const uint64_t n = varint();
    if (n > remaining() / min_bytes) {
      throw Damaged("a count of " + std::to_string(n) +
                    " is more than the file holds");
    }
    return n;
  }
  // A varint that is a dimension, a size or an offset: at most INT64_MAX.
  int64_t extent() {
    const uint64_t v = varint();
    if (v > static_cast<uint64_t>(INT64_MAX)) {
      throw Damaged("a dimension or offset of " + std::to_string(v));
    }
    return static_cast<int64_t>(v);
  }
  uint64_t fixed64() {
    need(8);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) {
      v |= static_cast<uint64_t>(static_cast<uint8_t>(p_[at_ + i])) << (8 * i);
    }
    at_ += 8;
    return v;
  }
  std::string_view bytes() {
    const uint64_t n = varint();
    if (n > remaining()) throw Damaged("a string runs past the end");
    std::string_view s = p_.substr(at_, n);
    at_ += n;
    return s;
  }
  std::vector<int64_t> dims(size_t rank) {
    std::vector<int64_t> d(rank);
    for (int64_t& v : d) v = extent();
    return d;
  }

 private:
  void need(size_t n) const {
    if (remaining() < n) throw Damaged("cut short");
  }
  std::string_view p_;
  size_t at_ = 0;
};

// Checks the key paths as they come, in tree order: a container's keys are
// distinct and of one key type (a list's are its positions), a subtree is
// recorded in one run, and nothing lies inside a leaf.
class StructureCheck {
 public:
  // The next leaf's path `path`, whose first `shared` keys are the previous
  // leaf's (the first leaf: `first`).
  void add(const KeyPath& path, size_t shared, bool first) {
    if (first) {
      if (shared != 0) throw Damaged("the first leaf shares keys");
      open_container(0);
    } else if (previous_size_ == 0 || path.empty()) {
      throw Damaged("a root leaf among others");
    } else if (shared >= previous_size_ || path.size() <= shared) {
      throw Damaged("a leaf inside another leaf");
    }
    // The containers of the first `shared` keys stay open; deeper ones
    // start afresh.
    for (size_t d = shared; d < path.size(); ++d) {
      if (d > shared) open_container(d);
      insert(open_[d], path[d]);
    }
    previous_size_ = path.size();
  }

 private:
  struct Open {
    bool typed = false;
    KeyType type = KeyType::kDict;
    uint64_t next_position = 0;
    std::unordered_set<std::string_view> keys;
  };

  void open_container(size_t d) {
    if (open_.size() <= d) open_.resize(d + 1);
    Open& o = open_[d];
    o.typed = false;
    o.next_position = 0;
    o.keys.clear();
  }

  void insert(Open& o, const KeyEntry& key) {
    if (!o.typed) {
      o.typed = true;
      o.type = key.type;
    } else if (o.type != key.type) {
      throw Damaged("a container with both dict keys and list positions");
    }
    if (key.type == KeyType::kSequence) {
      if (key.key != std::to_string(o.next_position)) {
        throw Damaged("list position '" + key.key.substr(0, 40) + "' where " +
                      std::to_string(o.next_position) + " comes next");
      }
      ++o.next_position;
      return;
    }
    if (!o.keys.insert(key.key).second) {
      throw Damaged("recorded twice, or its subtree is split");
    }
  }

  // open_[d]: the container holding key d of the current path (reused).
  std::vector<Open> open_;
  size_t previous_size_ = 0;
};

// Reads the array fields of `leaf` (after its kind), checking them against
// `datasets` and `packed_dtype` (a pack's one dtype, by dataset).
void decode_array(Decoder& d, const std::vector<std::string>& datasets,
                  std::vector<ckpt_dtype>& packed_dtype, LeafRecord& leaf) {
  leaf.kind = LeafKind::kArray;
  leaf.value_type = kArrayValueType;
  // Checked before it becomes a ckpt_dtype: a number outside the enum may
  // not be held in one.
  const uint8_t dtype = d.byte();
  if (dtype < CKPT_DTYPE_BOOL || dtype > CKPT_DTYPE_COMPLEX128) {
    throw Damaged("unknown dtype " + std::to_string(dtype));
  }
  leaf.dtype = static_cast<ckpt_dtype>(dtype);
  const uint64_t rank = d.varint();
  if (rank > kMaxRank) {
    throw Damaged("rank " + std::to_string(rank) +
                  " is above HDF5's limit of " + std::to_string(kMaxRank));
  }
  leaf.shape = d.dims(rank);
  uint64_t count = 0;
  if (!checked_size(leaf.shape, ckpt::sdk::dtype_size(leaf.dtype), &count,
                    nullptr)) {
    throw Damaged("the shape " + shape_text(leaf.shape) +
                  " is too large for any array");
  }
  const uint8_t flags = d.byte();
  if (flags & ~(kFlagPacked | kFlagChecksum | kFlagSharded)) {
    throw Damaged("unknown array flags " + std::to_string(flags));
  }
  const uint64_t dataset = d.varint();
  if (dataset >= datasets.size()) {
    throw Damaged("dataset number " + std::to_string(dataset) + " of " +
                  std::to_string(datasets.size()));
  }
  leaf.location.dataset = datasets[dataset];
  leaf.location.packed = flags & kFlagPacked;
  leaf.sharded = flags & kFlagSharded;
  leaf.has_checksum = flags & kFlagChecksum;
  if (leaf.location.packed) {
    if (leaf.sharded) throw Damaged("a sharded array with a packed offset");
    leaf.location.offset = static_cast<uint64_t>(d.extent());
    if (leaf.location.offset > static_cast<uint64_t>(INT64_MAX) - count) {
      throw Damaged("storage offset " + std::to_string(leaf.location.offset) +
                    " is out of range");
    }
    ckpt_dtype& pack = packed_dtype[dataset];
    if (pack != CKPT_DTYPE_INVALID && pack != leaf.dtype) {
      throw Damaged("the packed dataset " + leaf.location.dataset +
                    " holds arrays of two dtypes");
    }
    pack = leaf.dtype;
  }
  if (leaf.has_checksum) leaf.xxh3 = d.fixed64();
  if (!leaf.sharded) {
    if (!leaf.has_checksum) throw Damaged("no xxh3 checksum");
    return;
  }
  if (leaf.shape.empty()) throw Damaged("a sharded array of rank 0");
  const uint64_t pieces = d.count(1 + 2 * rank);
  if (pieces > kMaxPieces) {
    throw Damaged("more than " + std::to_string(kMaxPieces) + " pieces");
  }
  leaf.pieces.resize(pieces);
  for (StoredPiece& p : leaf.pieces) {
    const uint64_t process = d.varint();
    if (process > static_cast<uint64_t>(kMaxProcess)) {
      throw Damaged("a piece of process " + std::to_string(process));
    }
    p.process = static_cast<int64_t>(process);
    p.offset = d.dims(rank);
    p.shape = d.dims(rank);
  }
  const std::string problem =
      ckpt::sdk::tiling_problem(leaf.pieces, leaf.shape);
  if (!problem.empty()) throw Damaged("pieces: " + problem);
}

void decode_value(Decoder& d, uint8_t kind, LeafRecord& leaf) {
  leaf.has_value = true;
  switch (kind) {
    case kIndexBool: {
      leaf.kind = LeafKind::kBool;
      leaf.value_type = kScalarValueType;
      const uint8_t b = d.byte();
      if (b > 1) throw Damaged("a bool of " + std::to_string(b));
      leaf.bool_value = b != 0;
      return;
    }
    case kIndexInt:
      leaf.kind = LeafKind::kInt;
      leaf.value_type = kScalarValueType;
      leaf.int_value = d.signed_varint();
      return;
    case kIndexDouble: {
      leaf.kind = LeafKind::kDouble;
      leaf.value_type = kScalarValueType;
      const uint64_t bits = d.fixed64();
      std::memcpy(&leaf.double_value, &bits, sizeof bits);
      return;
    }
    case kIndexString:
      leaf.kind = LeafKind::kString;
      leaf.value_type = kStringValueType;
      leaf.string_value = std::string(d.bytes());
      return;
    case kIndexNone:
      leaf.kind = LeafKind::kNone;
      leaf.value_type = kNoneValueType;
      break;
    case kIndexEmptyDict:
      leaf.kind = LeafKind::kEmptyDict;
      leaf.value_type = kDictValueType;
      break;
    case kIndexEmptyList:
      leaf.kind = LeafKind::kEmptyList;
      leaf.value_type = kListValueType;
      break;
    default:
      throw Damaged("unknown leaf kind " + std::to_string(kind));
  }
  leaf.has_value = false;
}

void check_dataset_path(std::string_view path) {
  if (path.empty() || path[0] != '/' || path.size() > kMaxDatasetPath ||
      path.find('\0') != std::string_view::npos) {
    throw Damaged("a dataset path that is not an HDF5 path");
  }
}

}  // namespace

std::string tree_index_file(const std::string& metadata_file) {
  return kTreeIndexFile + metadata_file.substr(std::strlen(kMetadataFile));
}

std::string encode_tree_index(const TreeMetadata& metadata) {
  Encoder e;
  e.out.reserve(64 + metadata.leaves.size() * 40);
  e.out.append(kMagic);
  e.varint(kIndexVersion);
  e.bytes(metadata.storage_format);
  e.bytes(metadata.array_file);
  e.varint(static_cast<uint64_t>(metadata.format));
  // Dataset paths once each, in order of first use.
  std::unordered_map<std::string_view, uint32_t> number;
  std::vector<std::string_view> datasets;
  std::vector<uint32_t> dataset_of(metadata.leaves.size(), 0);
  for (size_t i = 0; i < metadata.leaves.size(); ++i) {
    const LeafRecord& leaf = metadata.leaves[i];
    if (leaf.kind != LeafKind::kArray) continue;
    auto [it, fresh] = number.emplace(leaf.location.dataset,
                                      static_cast<uint32_t>(datasets.size()));
    if (fresh) datasets.push_back(leaf.location.dataset);
    dataset_of[i] = it->second;
  }
  e.varint(datasets.size());
  for (std::string_view d : datasets) e.bytes(d);
  e.varint(metadata.leaves.size());
  const KeyPath* previous = nullptr;
  for (size_t i = 0; i < metadata.leaves.size(); ++i) {
    const LeafRecord& leaf = metadata.leaves[i];
    size_t shared = 0;
    if (previous) {
      while (shared < previous->size() && shared < leaf.path.size() &&
             (*previous)[shared].key == leaf.path[shared].key &&
             (*previous)[shared].type == leaf.path[shared].type) {
        ++shared;
      }
    }
    e.varint(shared);
    e.varint(leaf.path.size() - shared);
    for (size_t k = shared; k < leaf.path.size(); ++k) {
      e.byte(static_cast<uint8_t>(leaf.path[k].type));
      e.bytes(leaf.path[k].key);
    }
    encode_leaf(leaf, dataset_of[i], e);
    previous = &leaf.path;
  }
  e.byte(metadata.has_structure ? 1 : 0);
  if (metadata.has_structure) {
    e.varint(metadata.structure.size);
    e.varint(metadata.structure.extents.size());
    for (const Extent& x : metadata.structure.extents) {
      e.varint(x.offset);
      e.varint(x.length);
    }
    e.fixed64(metadata.structure.xxh3);
  }
  return std::move(e.out);
}

namespace {

// Where decode_tree_index is, for its error messages (made only then).
struct IndexPosition {
  const LeafRecord* leaf = nullptr;
  size_t leaf_number = 0;
  bool in_structure = false;

  std::string text() const {
    if (in_structure) return "the array file's structure record: ";
    if (!leaf) return "";
    std::string repr = key_path_repr(leaf->path);
    if (repr.size() > 300) repr = repr.substr(0, 300) + "...";
    return "leaf " + std::to_string(leaf_number) + " " + repr + ": ";
  }
};

// The index's header after the magic: version, storage format, array file,
// pytree format; then the dataset table, returned.
std::vector<std::string> decode_index_header(Decoder& d, TreeMetadata& out) {
  const uint64_t version = d.varint();
  if (version > kIndexVersion) {
    throw Unsupported("index version " + std::to_string(version) +
                      " is newer than this ckpt reads (" +
                      std::to_string(kIndexVersion) + ")");
  }
  if (version != kIndexVersion) throw Damaged("unknown index version");
  out.storage_format = std::string(d.bytes());
  if (!is_ckpt_storage_format(out.storage_format)) {
    throw Damaged("storage format \"" + out.storage_format.substr(0, 100) +
                  "\"");
  }
  out.array_file = std::string(d.bytes());
  if (!is_plain_file_name(out.array_file)) {
    throw Damaged(
        "the array file is not a plain file name in the "
        "checkpointable's folder");
  }
  const uint64_t format = d.varint();
  if (format != static_cast<uint64_t>(kPyTreeFormat)) {
    throw Damaged("ckpt_pytree_format " + std::to_string(format));
  }
  out.format = kPyTreeFormat;
  std::vector<std::string> datasets(d.count(1));
  std::unordered_set<std::string_view> distinct;
  for (std::string& path : datasets) {
    std::string_view p = d.bytes();
    check_dataset_path(p);
    if (!distinct.insert(p).second) {
      throw Damaged("a dataset listed twice in the dataset table");
    }
    path = std::string(p);
  }
  return datasets;
}

// A leaf's key path: `shared` keys of `previous`, then the keys added.
// Returns `shared`.
uint64_t decode_key_path(Decoder& d, const KeyPath* previous, KeyPath& path) {
  const uint64_t shared = d.varint();
  const uint64_t added = d.count(2);
  if (shared > (previous ? previous->size() : 0) ||
      shared + added > kMaxTreeDepth) {
    throw Damaged(shared + added > kMaxTreeDepth
                      ? "a key path deeper than " +
                            std::to_string(kMaxTreeDepth) + " keys"
                      : "a key path sharing more keys than its "
                        "predecessor has");
  }
  path.reserve(shared + added);
  if (shared) path.assign(previous->begin(), previous->begin() + shared);
  for (uint64_t k = 0; k < added; ++k) {
    const uint8_t type = d.byte();
    if (type != static_cast<uint8_t>(KeyType::kSequence) &&
        type != static_cast<uint8_t>(KeyType::kDict)) {
      throw Damaged("unknown key type " + std::to_string(type));
    }
    std::string_view key = d.bytes();
    if (key.find('\0') != std::string_view::npos) {
      throw Unsupported(
          "a key holds a NUL character, which the plugin ABI's "
          "NUL-terminated keys cannot carry");
    }
    path.push_back({std::string(key), static_cast<KeyType>(type)});
  }
  return shared;
}

// The array file's structure record at the index's end.
void decode_structure_record(Decoder& d, TreeMetadata& out) {
  const uint8_t has_structure = d.byte();
  if (has_structure != 1) throw Damaged("missing");
  out.has_structure = true;
  out.structure.size = static_cast<uint64_t>(d.extent());
  out.structure.extents.resize(d.count(2));
  for (Extent& x : out.structure.extents) {
    x.offset = static_cast<uint64_t>(d.extent());
    x.length = static_cast<uint64_t>(d.extent());
  }
  out.structure.xxh3 = d.fixed64();
  out.structure_checked = true;
}

}  // namespace

TreeMetadata decode_tree_index(std::string_view bytes,
                               const std::string& what) {
  TreeMetadata out;
  IndexPosition here;
  try {
    if (bytes.substr(0, kMagic.size()) != kMagic) {
      throw Damaged("not a ckpt tree index");
    }
    Decoder d(bytes.substr(kMagic.size()));
    const std::vector<std::string> datasets = decode_index_header(d, out);
    std::vector<ckpt_dtype> packed_dtype(datasets.size(), CKPT_DTYPE_INVALID);
    // A leaf takes at least 3 bytes (shared, added, kind).
    const uint64_t leaves = d.count(3);
    out.leaves.resize(leaves);
    StructureCheck structure;
    const KeyPath* previous = nullptr;
    for (uint64_t i = 0; i < leaves; ++i) {
      LeafRecord& leaf = out.leaves[i];
      here.leaf = &leaf;
      here.leaf_number = i;
      const uint64_t shared = decode_key_path(d, previous, leaf.path);
      structure.add(leaf.path, shared, i == 0);
      const uint8_t kind = d.byte();
      if (kind == kIndexArray) {
        decode_array(d, datasets, packed_dtype, leaf);
      } else {
        decode_value(d, kind, leaf);
      }
      previous = &leaf.path;
    }
    here.in_structure = true;
    decode_structure_record(d, out);
    here = IndexPosition{};
    if (d.remaining() != 0) {
      throw Damaged(std::to_string(d.remaining()) +
                    " bytes after the end of the index");
    }
  } catch (const Damaged& e) {
    throw Error(CKPT_ERROR_DATA_LOSS,
                what + " is damaged (" + here.text() + e.what() + ")");
  } catch (const Unsupported& e) {
    throw Error(CKPT_ERROR_UNIMPLEMENTED, what + ": " + here.text() + e.what());
  } catch (const std::bad_alloc&) {
    throw Error(CKPT_ERROR_DATA_LOSS,
                what + " is damaged (it asks for more memory than there is)");
  }
  return out;
}

TreeMetadata read_saved_tree(const std::string& directory,
                             const std::string& metadata_file,
                             const std::string& what) {
  const std::string index_path =
      ckpt::sdk::join_path(directory, tree_index_file(metadata_file));
  std::string bytes;
  if (ckpt::sdk::read_file_if_exists(index_path, bytes)) {
    TreeMetadata tree = decode_tree_index(bytes, what + ": " + index_path);
    tree.record = tree_index_file(metadata_file);
    return tree;
  }
  const std::string path = ckpt::sdk::join_path(directory, metadata_file);
  std::string text;
  if (!ckpt::sdk::read_file_if_exists(path, text)) {
    throw Error(CKPT_ERROR_NOT_FOUND,
                what + ": no " + metadata_file + " in " + directory);
  }
  TreeMetadata tree = parse_tree_metadata(text, what + ": " + path);
  tree.record = metadata_file;
  if (tree.format >= 3) {
    throw Error(CKPT_ERROR_DATA_LOSS,
                what + ": " + index_path + " is missing (" + path +
                    " records ckpt_pytree_format " +
                    std::to_string(tree.format) +
                    ", whose tree is read from that index)");
  }
  return tree;
}

}  // namespace ckpt::pytree
