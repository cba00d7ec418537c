#include "save/snapshot.h"

#include <ckpt/sdk/boxes.h>
#include <ckpt/sdk/error.h>
#include <ckpt/sdk/text.h>
#include <ckpt/sdk/value.h>

#include <cstring>
#include <string_view>
#include <unordered_set>

#include "runtime/buffers.h"
#include "runtime/parallel.h"
#include "tree/cast.h"
#include "tree/dtypes.h"

namespace ckpt::pytree {

namespace {

using ckpt::sdk::Error;

// Arrays of higher rank always get their own dataset (the index stores at
// most this many dimensions).
constexpr size_t kMaxPackedRank = 8;

struct FlatLeaf {
  KeyPath path;
  const ckpt_value* value;
};

// Names a leaf (or part of one) in an error message: the text is made only
// when an error is thrown, not for every leaf saved.
class Where {
 public:
  Where(const std::string& what, const KeyPath& path, std::string suffix = {})
      : what_(what), path_(path), suffix_(std::move(suffix)) {}
  std::string str() const {
    return what_ + ": key path " + key_path_repr(path_) + suffix_;
  }
  // The same leaf, with `suffix` after its key path.
  Where with(std::string suffix) const {
    return Where(what_, path_, std::move(suffix));
  }

 private:
  const std::string& what_;
  const KeyPath& path_;
  std::string suffix_;
};

// Throws INVALID_ARGUMENT naming `what` and the key path when the dict `v`
// at `path` has a key twice: its leaves would share a key path and the
// checkpoint could not be loaded. Keys cross the plugin ABI NUL-terminated,
// so keys that differ only after a NUL arrive alike.
void check_unique_keys(const ckpt_value& v, KeyPath& path,
                       const std::string& what) {
  std::unordered_set<std::string_view> seen;
  seen.reserve(v.count);
  for (size_t i = 0; i < v.count; ++i) {
    std::string_view key = v.keys[i] ? v.keys[i] : "";
    if (seen.insert(key).second) continue;
    path.push_back({std::string(key), KeyType::kDict});
    std::string where = key_path_repr(path);
    path.pop_back();
    throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                what + ": key path " + where +
                    ": the key appears twice in its dict (keys reach the "
                    "plugin NUL-terminated: keys that differ only after a "
                    "NUL character are alike)");
  }
}

void flatten(const ckpt_value& v, KeyPath& path, std::vector<FlatLeaf>& out,
             const std::string& what) {
  if (v.kind == CKPT_VALUE_DICT || v.kind == CKPT_VALUE_LIST) {
    if (path.size() >= kMaxTreeDepth && v.count != 0) {
      throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                  what + ": key path " + key_path_repr(path) +
                      ": the tree is nested deeper than " +
                      std::to_string(kMaxTreeDepth) + " levels");
    }
    if (v.count == 0) {
      out.push_back({path, &v});
      return;
    }
    if (v.kind == CKPT_VALUE_DICT && v.count > 1) {
      check_unique_keys(v, path, what);
    }
    for (size_t i = 0; i < v.count; ++i) {
      if (v.kind == CKPT_VALUE_DICT) {
        path.push_back({v.keys[i] ? v.keys[i] : "", KeyType::kDict});
        if (!ckpt::sdk::is_utf8(path.back().key)) {
          throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                      Where(what, path).str() +
                          ": the key is not valid UTF-8 (_METADATA is "
                          "JSON text)");
        }
      } else {
        path.push_back({std::to_string(i), KeyType::kSequence});
      }
      flatten(v.children[i], path, out, what);
      path.pop_back();
    }
    return;
  }
  out.push_back({path, &v});
}

void* allocate(uint64_t nbytes, std::shared_ptr<void>& keeper) {
  keeper = allocate_buffer(nbytes);
  return keeper.get();
}

std::vector<int64_t> shape_of(const ckpt_array& a) {
  return std::vector<int64_t>(a.tensor.shape, a.tensor.shape + a.tensor.ndim);
}

void copy_dim(const char* src, const ckpt_array& a, int dim, char*& dst,
              size_t item) {
  int64_t n = a.tensor.shape[dim];
  int64_t stride = a.tensor.strides[dim] * static_cast<int64_t>(item);
  if (dim + 1 == a.tensor.ndim) {
    if (stride == static_cast<int64_t>(item)) {
      std::memcpy(dst, src, static_cast<size_t>(n) * item);
      dst += n * static_cast<int64_t>(item);
      return;
    }
    for (int64_t i = 0; i < n; ++i) {
      std::memcpy(dst, src + i * stride, item);
      dst += item;
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i)
    copy_dim(src + i * stride, a, dim + 1, dst, item);
}

}  // namespace

std::string packed_dataset(ckpt_dtype dtype) {
  return "/_ckpt_packed/" + dtype_name(dtype);
}

bool is_c_contiguous(const ckpt_array& a) {
  if (!a.tensor.strides) return true;
  int64_t expected = 1;
  for (int d = a.tensor.ndim - 1; d >= 0; --d) {
    if (a.tensor.shape[d] != 1 && a.tensor.strides[d] != expected) return false;
    expected *= a.tensor.shape[d];
  }
  return true;
}

void copy_contiguous(const ckpt_array& a, void* destination) {
  size_t item = ckpt::sdk::dtype_size(a.dtype);
  const char* src =
      static_cast<const char*>(a.tensor.data) + a.tensor.byte_offset;
  uint64_t count = element_count(shape_of(a));
  if (count == 0) return;
  if (is_c_contiguous(a) || a.tensor.ndim == 0) {
    std::memcpy(destination, src, static_cast<size_t>(count) * item);
    return;
  }
  char* dst = static_cast<char*>(destination);
  copy_dim(src, a, 0, dst, item);
}

namespace {

bool every_leaf_below(const ckpt_value& v, bool (*leaf_ok)(const ckpt_value&),
                      size_t depth) {
  if (v.kind == CKPT_VALUE_DICT || v.kind == CKPT_VALUE_LIST) {
    if (depth >= kMaxTreeDepth && v.count != 0) return false;
    for (size_t i = 0; i < v.count; ++i) {
      if (!every_leaf_below(v.children[i], leaf_ok, depth + 1)) return false;
    }
    return true;
  }
  return leaf_ok(v);
}

}  // namespace

bool every_leaf(const ckpt_value& v, bool (*leaf_ok)(const ckpt_value&)) {
  return every_leaf_below(v, leaf_ok, 0);
}

bool is_supported_tree(const ckpt_value& value) {
  return every_leaf(value, [](const ckpt_value& v) {
    if (v.kind == CKPT_VALUE_ARRAY) {
      return v.array && is_valid_dtype(v.array->dtype) &&
             v.array->tensor.device.device_type == kDLCPU;
    }
    if (const ckpt_sharded_array* s = ckpt::sdk::sharded_of(v)) {
      return v.kind == CKPT_VALUE_SHARDED_ARRAY && is_valid_dtype(s->dtype);
    }
    return ckpt::sdk::is_plain_tree(v);  // none, bool, int, double, string
  });
}

namespace {

// Records the non-array leaf `v` in `leaf`. Throws INVALID_ARGUMENT at
// `where` for a kind the pytree handler cannot save, or a string that is not
// UTF-8.
void record_plain_leaf(const ckpt_value& v, LeafRecord& leaf,
                       const Where& where) {
  switch (v.kind) {
    case CKPT_VALUE_NONE:
      leaf.kind = LeafKind::kNone;
      break;
    case CKPT_VALUE_BOOL:
      leaf.kind = LeafKind::kBool;
      leaf.bool_value = v.int_value != 0;
      break;
    case CKPT_VALUE_INT:
      leaf.kind = LeafKind::kInt;
      leaf.int_value = v.int_value;
      break;
    case CKPT_VALUE_DOUBLE:
      leaf.kind = LeafKind::kDouble;
      leaf.double_value = v.double_value;
      break;
    case CKPT_VALUE_STRING:
      leaf.kind = LeafKind::kString;
      leaf.string_value = std::string(ckpt::sdk::string_of(v));
      if (!ckpt::sdk::is_utf8(leaf.string_value)) {
        throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                    where.str() +
                        ": the string is not valid UTF-8 (_METADATA is JSON "
                        "text)");
      }
      break;
    case CKPT_VALUE_DICT:
      leaf.kind = LeafKind::kEmptyDict;
      break;
    case CKPT_VALUE_LIST:
      leaf.kind = LeafKind::kEmptyList;
      break;
    default:
      throw Error(
          CKPT_ERROR_INVALID_ARGUMENT,
          where.str() + ": the pytree handler cannot save this kind of leaf");
  }
}

// Records array `a`'s kind, dtype and shape in `leaf` and returns its
// element count. Throws INVALID_ARGUMENT at `where` for an array ckpt cannot
// store.
uint64_t record_array(const ckpt_array* a, LeafRecord& leaf,
                      const Where& where) {
  if (!a || !is_valid_dtype(a->dtype)) {
    throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                where.str() + ": the array's dtype cannot be stored");
  }
  if (a->tensor.device.device_type != kDLCPU) {
    throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                where.str() + ": only CPU arrays can be saved");
  }
  if (a->tensor.ndim < 0 || static_cast<size_t>(a->tensor.ndim) > kMaxRank) {
    throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                where.str() + ": rank " + std::to_string(a->tensor.ndim) +
                    " is above HDF5's limit of " + std::to_string(kMaxRank));
  }
  if (a->tensor.ndim > 0 && !a->tensor.shape) {
    throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                where.str() + ": the array has no shape");
  }
  leaf.kind = LeafKind::kArray;
  leaf.dtype = a->dtype;
  leaf.shape = shape_of(*a);
  for (int64_t d : leaf.shape) {
    if (d < 0) {
      throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                  where.str() + ": negative dimension");
    }
  }
  uint64_t count = 0;
  if (!checked_size(leaf.shape, ckpt::sdk::dtype_size(a->dtype), &count,
                    nullptr)) {
    throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                where.str() + ": the array's shape is too large");
  }
  if (count > 0 && !a->tensor.data) {
    throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                where.str() + ": the array has no data");
  }
  return count;
}

// One copy a snapshot makes: `source`'s elements, in C order, to `to`.
struct Copy {
  const ckpt_array* source;
  void* to;
  uint64_t nbytes;
};

// Makes every copy of `copies`, spread over the cores in runs of a few
// MiB (fresh memory: its page faults are spread too).
void make_copies(const std::vector<Copy>& copies) {
  std::vector<size_t> run_starts;
  uint64_t total = 0, in_run = 0;
  for (size_t i = 0; i < copies.size(); ++i) {
    if (i == 0 || in_run >= (4u << 20)) {
      run_starts.push_back(i);
      in_run = 0;
    }
    in_run += copies[i].nbytes;
    total += copies[i].nbytes;
  }
  run_starts.push_back(copies.size());
  parallel_for(run_starts.size() - 1, threads_for(total), [&](size_t r) {
    for (size_t i = run_starts[r]; i < run_starts[r + 1]; ++i) {
      copy_contiguous(*copies[i].source, copies[i].to);
    }
  });
}

// The bytes of array `a` (leaf `index`, `nbytes` long) as a dataset of its
// own at its key path: kept by reference when immutable and C-contiguous,
// else copied (queued in `copies`).
ArrayBytes own_dataset(const ckpt_array& a, size_t index, uint64_t nbytes,
                       LeafRecord& leaf, Snapshot& snap,
                       std::vector<Copy>& copies) {
  ArrayBytes bytes;
  bytes.leaf = index;
  bytes.nbytes = nbytes;
  leaf.location.dataset = hdf5_path(leaf.path);
  if ((a.flags & CKPT_ARRAY_IMMUTABLE) && is_c_contiguous(a)) {
    bytes.data = static_cast<const char*>(a.tensor.data) + a.tensor.byte_offset;
    snap.references_caller_memory = true;
  } else {
    std::shared_ptr<void> keeper;
    void* copy = allocate(nbytes, keeper);
    copies.push_back({&a, copy, nbytes});
    bytes.data = copy;
    snap.own_buffers.push_back(std::move(keeper));
  }
  return bytes;
}

// The bytes of array `a` (leaf `index`, `count` elements), recording where
// they are stored in `leaf`. A small array gets the next slice of its
// dtype's pack and is listed in `packed_sources`, to be copied by
// fill_packs(); a larger one is kept by reference when immutable and
// C-contiguous, else queued for copying in `copies`.
ArrayBytes place_array(const ckpt_array& a, size_t index, uint64_t count,
                       LeafRecord& leaf, uint64_t pack_threshold_bytes,
                       Snapshot& snap,
                       std::vector<const ckpt_array*>& packed_sources,
                       std::vector<Copy>& copies) {
  uint64_t nbytes = count * ckpt::sdk::dtype_size(a.dtype);
  bool pack =
      nbytes < pack_threshold_bytes && leaf.shape.size() <= kMaxPackedRank;
  if (!pack) return own_dataset(a, index, nbytes, leaf, snap, copies);
  PackBuffer& p = snap.packs[a.dtype];
  if (p.dataset.empty()) p.dataset = packed_dataset(a.dtype);
  leaf.location = {p.dataset, true, p.elements};
  p.elements += count;
  packed_sources[index] = &a;
  ArrayBytes bytes;  // data set by fill_packs()
  bytes.leaf = index;
  bytes.nbytes = nbytes;
  return bytes;
}

// `extra` bytes may follow the path (a piece's "/<k>").
void check_path_length(const KeyPath& path, size_t extra, const Where& where) {
  if (hdf5_path_length(path) + extra > kMaxDatasetPath) {
    throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                where.str() + ": the keys make an HDF5 path longer than " +
                    std::to_string(kMaxDatasetPath) + " bytes");
  }
}

std::vector<int64_t> dims(const int64_t* p, int32_t rank) {
  return std::vector<int64_t>(p, p + rank);
}

// Records the sharded array `s` in `leaf`: its global shape, and every
// piece with its writer. The pieces process `process` writes go, as
// arrays of their own (never packed), to `snap.pieces`. Throws
// INVALID_ARGUMENT at `where` for a sharded array ckpt cannot store or a
// placement that is not consistent.
void record_sharded(const ckpt_sharded_array& s, LeafRecord& leaf, int process,
                    Snapshot& snap, std::vector<Copy>& copies,
                    const Where& where) {
  if (!is_valid_dtype(s.dtype) || s.ndim < 1 ||
      static_cast<size_t>(s.ndim) > kMaxRank || !s.global_shape ||
      (s.num_shards && !s.shards) || (s.num_pieces && !s.pieces) ||
      s.num_pieces > kMaxPieces) {
    throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                where.str() +
                    ": a sharded array the pytree handler cannot store "
                    "(rank 1 to " +
                    std::to_string(kMaxRank) + ", at most " +
                    std::to_string(kMaxPieces) +
                    " pieces; save a rank-0 array as a plain array)");
  }
  leaf.kind = LeafKind::kArray;
  leaf.sharded = true;
  leaf.dtype = s.dtype;
  leaf.shape = dims(s.global_shape, s.ndim);
  leaf.location.dataset = hdf5_path(leaf.path);
  for (size_t k = 0; k < s.num_pieces; ++k) {
    const ckpt_shard& p = s.pieces[k];
    leaf.pieces.push_back(
        {dims(p.offset, s.ndim), dims(p.shape, s.ndim), p.index});
  }
  const std::string problem =
      ckpt::sdk::tiling_problem(leaf.pieces, leaf.shape);
  if (!problem.empty()) {
    throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                where.str() + ": the pieces the host placed: " + problem);
  }
  std::vector<bool> taken(s.num_pieces, false);
  for (size_t i = 0; i < s.num_shards; ++i) {
    const ckpt_shard& shard = s.shards[i];
    if (shard.index < 0 || static_cast<size_t>(shard.index) >= s.num_pieces) {
      throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                  where.str() +
                      ": a shard without its piece (was the sharded "
                      "array placed by the host?)");
    }
    const size_t k = static_cast<size_t>(shard.index);
    if (leaf.pieces[k].process != process || taken[k]) continue;
    taken[k] = true;
    if (!snap.pieces) snap.pieces = std::make_shared<Snapshot>();
    Snapshot& own = *snap.pieces;
    LeafRecord piece;
    piece.path = piece_path(leaf.path, k);
    const Where piece_where = where.with(" (piece " + std::to_string(k) + ")");
    uint64_t count = record_array(shard.array, piece, piece_where);
    if (piece.dtype != leaf.dtype || piece.shape != leaf.pieces[k].shape) {
      throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                  piece_where.str() +
                      ": the shard's elements are not its box's "
                      "dtype and shape");
    }
    // Never packed: each piece is a dataset the virtual dataset maps.
    own.arrays.push_back(own_dataset(
        *shard.array, own.metadata.leaves.size(),
        count * ckpt::sdk::dtype_size(shard.array->dtype), piece, own, copies));
    own.metadata.leaves.push_back(std::move(piece));
  }
}

// The record of `flat` (leaf `index`); an array's bytes go to `snap` (see
// place_array()) when this process writes it. Throws INVALID_ARGUMENT
// naming `what` and the key path.
LeafRecord record_leaf(FlatLeaf&& flat, size_t index,
                       uint64_t pack_threshold_bytes, int process, bool primary,
                       Snapshot& snap,
                       std::vector<const ckpt_array*>& packed_sources,
                       std::vector<Copy>& copies, const std::string& what) {
  const ckpt_value& v = *flat.value;
  LeafRecord leaf;
  leaf.path = std::move(flat.path);
  const Where where(what, leaf.path);
  if (v.kind == CKPT_VALUE_SHARDED_ARRAY) {
    const ckpt_sharded_array* s = ckpt::sdk::sharded_of(v);
    if (!s) {
      throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                  where.str() + ": a sharded array without its description");
    }
    // A piece's dataset is the array's path and "/<piece number>".
    check_path_length(leaf.path, 1 + std::to_string(kMaxPieces).size(), where);
    record_sharded(*s, leaf, process, snap, copies, where);
    return leaf;
  }
  if (v.kind != CKPT_VALUE_ARRAY) {
    record_plain_leaf(v, leaf, where);
    return leaf;
  }
  uint64_t count = record_array(v.array, leaf, where);
  check_path_length(leaf.path, 0, where);
  if (!primary) return leaf;  // the primary host writes it
  snap.arrays.push_back(place_array(*v.array, index, count, leaf,
                                    pack_threshold_bytes, snap, packed_sources,
                                    copies));
  return leaf;
}

// Gives every packed array its place, now that the packs' sizes are known:
// a pack whose arrays are all immutable and C-contiguous (a synchronous
// save's) is written from them where they are, piece by piece; any other
// gets a buffer, and its arrays' copies are queued in `copies`.
// `packed_sources[leaf]` is the source of a packed leaf.
void fill_packs(Snapshot& snap,
                const std::vector<const ckpt_array*>& packed_sources,
                std::vector<Copy>& copies) {
  std::map<ckpt_dtype, bool> by_reference;
  for (auto& [dtype, pack] : snap.packs) by_reference[dtype] = true;
  for (const ArrayBytes& bytes : snap.arrays) {
    const ckpt_array* a = packed_sources[bytes.leaf];
    if (a && !((a->flags & CKPT_ARRAY_IMMUTABLE) && is_c_contiguous(*a))) {
      by_reference[a->dtype] = false;
    }
  }
  for (auto& [dtype, pack] : snap.packs) {
    if (by_reference[dtype]) {
      snap.references_caller_memory = true;
    } else {
      allocate(pack.elements * ckpt::sdk::dtype_size(dtype), pack.memory);
    }
  }
  for (ArrayBytes& bytes : snap.arrays) {
    const ckpt_array* a = packed_sources[bytes.leaf];
    if (!a) continue;
    PackBuffer& pack = snap.packs[a->dtype];
    if (!pack.memory) {
      bytes.data =
          static_cast<const char*>(a->tensor.data) + a->tensor.byte_offset;
      pack.pieces.push_back({bytes.data, bytes.nbytes});
      continue;
    }
    const LeafRecord& leaf = snap.metadata.leaves[bytes.leaf];
    char* base = static_cast<char*>(pack.memory.get());
    char* dst = base + leaf.location.offset * ckpt::sdk::dtype_size(a->dtype);
    copies.push_back({a, dst, bytes.nbytes});
    bytes.data = dst;
  }
}

}  // namespace

Snapshot take_snapshot(const ckpt_value& value, uint64_t pack_threshold_bytes,
                       int process, bool primary, const std::string& what) {
  if ((value.kind == CKPT_VALUE_DICT || value.kind == CKPT_VALUE_LIST) &&
      value.count == 0) {
    throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                what + ": cannot save an empty tree (the root has no leaves)");
  }
  std::vector<FlatLeaf> flat;
  KeyPath path;
  flatten(value, path, flat, what);

  Snapshot snap;
  std::vector<const ckpt_array*> packed_sources(flat.size(), nullptr);
  std::vector<Copy> copies;
  snap.metadata.leaves.reserve(flat.size());
  snap.arrays.reserve(flat.size());
  for (size_t i = 0; i < flat.size(); ++i) {
    snap.metadata.leaves.push_back(
        record_leaf(std::move(flat[i]), i, pack_threshold_bytes, process,
                    primary, snap, packed_sources, copies, what));
  }
  fill_packs(snap, packed_sources, copies);
  make_copies(copies);
  return snap;
}

}  // namespace ckpt::pytree
