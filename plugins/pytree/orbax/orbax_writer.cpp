#include "orbax/orbax_writer.h"

#include <ckpt/sdk/dtype.h>
#include <ckpt/sdk/error.h>
#include <ckpt/sdk/files.h>
#include <fcntl.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "orbax/crc32c.h"
#include "orbax/ocdbt_database.h"
#include "orbax/ocdbt_encode.h"
#include "orbax/ocdbt_writer.h"
#include "orbax/orbax_storage.h"
#include "runtime/parallel.h"
#include "tree/cast.h"
#include "tree/dtypes.h"

namespace ckpt::pytree {

namespace {

namespace fs = std::filesystem;
using ckpt::sdk::Error;
using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

// An array above this is split into inner chunks of at most this many
// bytes along its first dimension (inside one zarr shard), compressed in
// parallel; the bytes of work compressed before they are written.
constexpr uint64_t kInnerChunkBytes = 64u << 20;
constexpr uint64_t kBatchBytes = 256u << 20;
// Shards of arrays up to this size are assembled in memory (and inlined
// in the B+tree when they end up small enough).
constexpr uint64_t kSmallArrayBytes = 64u << 10;
constexpr const char* kStringsFile = "_strings.json";

// One zarr array to write: an array leaf, or a scalar as a 0-d array.
struct ArrayOut {
  std::string name;  // Orbax's parameter name
  ckpt_dtype dtype = CKPT_DTYPE_INVALID;
  std::vector<int64_t> shape;
  // The chunk grid's chunk shape: each chunk is one zarr shard (the whole
  // array, or one piece of a sharded array).
  std::vector<int64_t> chunk;
  uint64_t chunk_bytes = 0;
  std::vector<int64_t> inner;  // inner chunk shape
  uint64_t inner_bytes = 0;
  size_t inner_count = 0;
  bool described_here = true;  // this process writes its zarr.json
};

// One chunk (zarr shard) of an array that this process writes.
struct ChunkOut {
  size_t array = 0;             // index into the arrays being written
  std::vector<int64_t> grid;    // its place in the chunk grid
  const char* data = nullptr;   // chunk_bytes, C order
  std::shared_ptr<char> owned;  // a scalar's bytes, an assembled chunk
  // As it is written: its index, and where its bytes went.
  std::string index;
  std::string small;  // the whole shard, for small chunks
  bool is_inline = false;
  uint64_t offset = 0, length = 0;
};

struct WriteSet {
  std::vector<ArrayOut> arrays;
  std::vector<ChunkOut> chunks;
};

// The inner chunk shape of `a`'s chunks: the whole chunk, or for a large
// one a slab of rows (a divisor of the chunk's first dimension, so that the
// inner chunks tile the shard as zarr's sharding codec requires).
void choose_inner_chunks(ArrayOut& a) {
  a.inner = a.chunk;
  a.inner_bytes = a.chunk_bytes;
  a.inner_count = element_count(a.shape) == 0 ? 0 : 1;
  if (a.chunk.empty() || a.chunk_bytes <= kInnerChunkBytes || a.chunk[0] <= 1) {
    return;
  }
  const auto rows = static_cast<uint64_t>(a.chunk[0]);
  const uint64_t row_bytes = a.chunk_bytes / rows;
  const uint64_t max_rows = std::max<uint64_t>(1, kInnerChunkBytes / row_bytes);
  // The fewest slabs: the smallest k >= rows / max_rows dividing rows.
  for (uint64_t k = (rows + max_rows - 1) / max_rows, tries = 0;
       k <= rows && tries < 65536; ++k, ++tries) {
    if (rows % k != 0) continue;
    // Slabs far below the target (a first dimension with no fitting
    // divisor) would make a huge index: keep one chunk then.
    if ((rows / k) * row_bytes < kInnerChunkBytes / 16) return;
    a.inner[0] = static_cast<int64_t>(rows / k);
    a.inner_bytes = (rows / k) * row_bytes;
    a.inner_count = k;
    return;
  }
}

// Copies the C-order box `piece` (at `offset`, shape `box`) into the
// C-order array `out` of shape `shape`; `item` bytes per element.
void copy_box(const char* piece, const std::vector<int64_t>& offset,
              const std::vector<int64_t>& box,
              const std::vector<int64_t>& shape, size_t item, char* out) {
  const size_t rank = shape.size();
  const uint64_t rows =
      element_count(box) / static_cast<uint64_t>(box[rank - 1]);
  const uint64_t row_bytes = static_cast<uint64_t>(box[rank - 1]) * item;
  std::vector<int64_t> at(rank, 0);
  for (uint64_t r = 0; r < rows; ++r) {
    uint64_t linear = 0;
    for (size_t d = 0; d < rank; ++d) {
      linear = linear * static_cast<uint64_t>(shape[d]) +
               static_cast<uint64_t>(offset[d] + at[d]);
    }
    std::memcpy(out + linear * item, piece + r * row_bytes, row_bytes);
    for (size_t d = rank - 1; d-- > 0;) {
      if (++at[d] < box[d]) break;
      at[d] = 0;
    }
  }
}

json fill_value(ckpt_dtype dtype) {
  switch (dtype) {
    case CKPT_DTYPE_BOOL:
      return false;
    case CKPT_DTYPE_FLOAT16:
    case CKPT_DTYPE_BFLOAT16:
    case CKPT_DTYPE_FLOAT32:
    case CKPT_DTYPE_FLOAT64:
      return 0.0;
    case CKPT_DTYPE_COMPLEX64:
    case CKPT_DTYPE_COMPLEX128:
      return json::array({0.0, 0.0});
    default:
      return 0;
  }
}

std::string zarr_json(const ArrayOut& a, const OrbaxWriteOptions& o) {
  json chain = json::array(
      {{{"name", "bytes"}, {"configuration", {{"endian", "little"}}}}});
  if (o.compress) {
    chain.push_back(
        {{"name", "zstd"},
         {"configuration", {{"level", o.zstd_level}, {"checksum", false}}}});
  }
  const json sharding = {
      {"name", "sharding_indexed"},
      {"configuration",
       {{"chunk_shape", a.inner},
        {"codecs", chain},
        {"index_codecs",
         json::array(
             {{{"name", "bytes"}, {"configuration", {{"endian", "little"}}}},
              {{"name", "crc32c"}}})},
        {"index_location", "end"}}}};
  const json meta = {
      {"zarr_format", 3},
      {"node_type", "array"},
      {"shape", a.shape},
      {"data_type", dtype_name(a.dtype)},
      {"chunk_grid",
       {{"name", "regular"}, {"configuration", {{"chunk_shape", a.chunk}}}}},
      {"chunk_key_encoding", {{"name", "default"}}},
      {"fill_value", fill_value(a.dtype)},
      {"codecs", json::array({sharding})}};
  return meta.dump();
}

// The key of chunk `c` of array `a` (zarr v3's default key encoding).
std::string chunk_key(const ArrayOut& a, const ChunkOut& c) {
  std::string key = a.name + "/c";
  for (int64_t g : c.grid) key += "/" + std::to_string(g);
  return key;
}

// The data file of the process's values: appended to, opened on first use.
class ValueFile {
 public:
  ValueFile(std::string path, unsigned mode, std::string what)
      : path_(std::move(path)), mode_(mode), what_(std::move(what)) {}
  ~ValueFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  uint64_t append(const void* data, uint64_t n) {
    if (fd_ < 0) {
      fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                   static_cast<mode_t>(mode_));
      if (fd_ < 0)
        ckpt::sdk::throw_os_error(errno, what_ + ": cannot create " + path_);
    }
    if (!ckpt::sdk::pwrite_full(fd_, data, n, size_)) {
      ckpt::sdk::throw_os_error(errno, what_ + ": cannot write " + path_);
    }
    const uint64_t at = size_;
    size_ += n;
    return at;
  }
  void close() {
    if (fd_ >= 0 && ::close(fd_) != 0) {
      fd_ = -1;
      ckpt::sdk::throw_os_error(errno, what_ + ": cannot write " + path_);
    }
    fd_ = -1;
  }
  bool used() const { return size_ > 0; }

 private:
  std::string path_;
  unsigned mode_;
  std::string what_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// One zstd frame: `size` bytes written at the start of a buffer of the
// worst case's size. The buffer is not zero-filled, so pages past the frame
// are never touched: a chunk that compresses well costs only its frame.
struct ZstdFrame {
  std::unique_ptr<char[]> bytes;
  size_t size = 0;
};

// Compresses `n` bytes at `src` as one zstd frame.
ZstdFrame zstd_frame(const char* src, uint64_t n, int level) {
  struct FreeContext {
    void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
  };
  static thread_local std::unique_ptr<ZSTD_CCtx, FreeContext> context(
      ZSTD_createCCtx());
  if (!context) throw Error(CKPT_ERROR_INTERNAL, "zstd: out of memory");
  const size_t bound = ZSTD_compressBound(n);
  ZstdFrame out{std::unique_ptr<char[]>(new char[bound]), 0};
  out.size =
      ZSTD_compressCCtx(context.get(), out.bytes.get(), bound, src, n, level);
  if (ZSTD_isError(out.size)) {
    throw Error(CKPT_ERROR_INTERNAL,
                std::string("zstd: ") + ZSTD_getErrorName(out.size));
  }
  return out;
}

// Writes every chunk's shard: the inner chunks of a batch are compressed
// in parallel, then appended in order, so that each shard is one range of
// the value file (or, small, a value of its own).
void write_shards(WriteSet& set, ValueFile& file, const OrbaxWriteOptions& o) {
  struct Job {
    ChunkOut* chunk;
    const ArrayOut* array;
    size_t k;
    ZstdFrame encoded;
  };
  std::vector<Job> jobs;
  for (ChunkOut& c : set.chunks) {
    const ArrayOut& a = set.arrays[c.array];
    for (size_t k = 0; k < a.inner_count; ++k) jobs.push_back({&c, &a, k, {}});
  }
  size_t start = 0;
  while (start < jobs.size()) {
    size_t end = start;
    uint64_t bytes = 0;
    while (end < jobs.size() && (end == start || bytes < kBatchBytes)) {
      bytes += jobs[end++].array->inner_bytes;
    }
    if (o.compress) {
      parallel_for(end - start, threads_for(bytes), [&](size_t i) {
        Job& j = jobs[start + i];
        j.encoded = zstd_frame(j.chunk->data + j.k * j.array->inner_bytes,
                               j.array->inner_bytes, o.zstd_level);
      });
    }
    for (size_t i = start; i < end; ++i) {
      Job& j = jobs[i];
      ChunkOut& c = *j.chunk;
      const ArrayOut& a = *j.array;
      const char* piece =
          o.compress ? j.encoded.bytes.get() : c.data + j.k * a.inner_bytes;
      const uint64_t size = o.compress ? j.encoded.size : a.inner_bytes;
      const bool small = a.chunk_bytes <= kSmallArrayBytes;
      uint64_t at = 0;
      if (small) {
        at = c.small.size();
        c.small.append(piece, size);
      } else {
        const uint64_t offset = file.append(piece, size);
        if (j.k == 0) c.offset = offset;
        at = offset - c.offset;
      }
      ocdbt::put_u64_le(c.index, at);
      ocdbt::put_u64_le(c.index, size);
      j.encoded = ZstdFrame();
      if (j.k + 1 < a.inner_count) continue;
      ocdbt::put_u32_le(c.index, crc32c(c.index.data(), c.index.size()));
      if (small) {
        c.small += c.index;
        c.length = c.small.size();
        c.is_inline = c.length <= ocdbt::kMaxInlineValueBytes;
        if (!c.is_inline) {
          c.offset = file.append(c.small.data(), c.small.size());
          std::string().swap(c.small);
        }
      } else {
        const uint64_t at_index = file.append(c.index.data(), c.index.size());
        c.length = at_index + c.index.size() - c.offset;
      }
      std::string().swap(c.index);
      c.owned.reset();  // its bytes are written
    }
    start = end;
  }
}

// _METADATA in Orbax's shape.
std::string orbax_metadata(const TreeMetadata& tree) {
  ordered_json leaves = ordered_json::object();
  for (const LeafRecord& leaf : tree.leaves) {
    ordered_json keys = ordered_json::array();
    for (const KeyEntry& k : leaf.path) {
      keys.push_back({{"key", k.key}, {"key_type", static_cast<int>(k.type)}});
    }
    ordered_json value;
    bool skip = false;
    switch (leaf.kind) {
      case LeafKind::kArray:
        value["value_type"] = kArrayValueType;
        break;
      case LeafKind::kBool:
      case LeafKind::kInt:
      case LeafKind::kDouble:
        value["value_type"] = kScalarValueType;
        break;
      case LeafKind::kString:
        value["value_type"] = kStringValueType;
        break;
      case LeafKind::kNone:
        value["value_type"] = kNoneValueType;
        skip = true;
        break;
      case LeafKind::kEmptyDict:
        value["value_type"] = kDictValueType;
        skip = true;
        break;
      case LeafKind::kEmptyList:
        value["value_type"] = kListValueType;
        skip = true;
        break;
    }
    value["skip_deserialize"] = skip;
    leaves[key_path_repr(leaf.path)] = {{"key_metadata", keys},
                                        {"value_metadata", value}};
  }
  const ordered_json meta = {{"tree_metadata", leaves},
                             {"use_ocdbt", true},
                             {"use_zarr3", true},
                             {"store_array_data_equal_to_fill_value", true},
                             {"custom_metadata", nullptr}};
  return meta.dump();
}

// The bytes of every piece of every sharded array, by the piece's key path.
std::map<std::string, const ArrayBytes*> piece_bytes(const Snapshot& snapshot) {
  std::map<std::string, const ArrayBytes*> out;
  if (!snapshot.pieces) return out;
  for (const ArrayBytes& b : snapshot.pieces->arrays) {
    out[key_path_repr(snapshot.pieces->metadata.leaves[b.leaf].path)] = &b;
  }
  return out;
}

// The chunk shape of the regular grid that the pieces of sharded `leaf`
// tile, one piece per cell (a cell at the array's far edge cut by it, as
// zarr's grid allows); nullopt when they tile none, or the array is empty.
std::optional<std::vector<int64_t>> piece_grid(const LeafRecord& leaf) {
  const size_t rank = leaf.shape.size();
  if (rank == 0 || element_count(leaf.shape) == 0) return std::nullopt;
  std::vector<int64_t> chunk(rank, 0);
  for (const StoredPiece& p : leaf.pieces) {
    for (size_t d = 0; d < rank; ++d) chunk[d] = std::max(chunk[d], p.shape[d]);
  }
  uint64_t cells = 1;
  for (size_t d = 0; d < rank; ++d) {
    if (chunk[d] <= 0) return std::nullopt;
    cells *= static_cast<uint64_t>((leaf.shape[d] + chunk[d] - 1) / chunk[d]);
    if (cells > leaf.pieces.size()) return std::nullopt;
  }
  if (cells != leaf.pieces.size()) return std::nullopt;
  std::set<std::vector<int64_t>> seen;
  for (const StoredPiece& p : leaf.pieces) {
    for (size_t d = 0; d < rank; ++d) {
      if (p.offset[d] % chunk[d] != 0 ||
          p.shape[d] != std::min(chunk[d], leaf.shape[d] - p.offset[d])) {
        return std::nullopt;
      }
    }
    if (!seen.insert(p.offset).second) return std::nullopt;
  }
  return chunk;
}

// Adds array `a` to `set`; its chunk shape is set, its inner chunks are
// chosen here. Returns its index.
size_t add_array(WriteSet& set, ArrayOut a) {
  a.chunk_bytes = element_count(a.chunk) * ckpt::sdk::dtype_size(a.dtype);
  choose_inner_chunks(a);
  set.arrays.push_back(std::move(a));
  return set.arrays.size() - 1;
}

// Adds to `set` the chunks of sharded array `a` (chunk shape unset) that
// this process holds: one per piece on the grid the pieces tile, or with
// one process the whole array assembled from its pieces.
void add_sharded(WriteSet& set, ArrayOut a, const LeafRecord& leaf,
                 const std::map<std::string, const ArrayBytes*>& pieces,
                 const ckpt::sdk::Call& call, const std::string& what) {
  const size_t item = ckpt::sdk::dtype_size(leaf.dtype);
  const std::string where = what + ": key path " + key_path_repr(leaf.path);
  const std::optional<std::vector<int64_t>> grid = piece_grid(leaf);
  if (!grid && call.process_count > 1 && element_count(leaf.shape) > 0) {
    throw Error(CKPT_ERROR_UNIMPLEMENTED,
                where +
                    ": its pieces do not tile a regular grid (equal boxes, "
                    "the last of a dimension cut by the array's edge), and "
                    "Orbax's storage of a save by many processes stores "
                    "each piece as one chunk of such a grid; save in ckpt's "
                    "storage and `ckpt convert --to orbax` it");
  }
  a.chunk = grid ? *grid : a.shape;
  for (int64_t& d : a.chunk) d = std::max<int64_t>(d, 1);
  const size_t index = add_array(set, std::move(a));
  const ArrayOut& array = set.arrays[index];
  if (array.inner_count == 0) return;
  ChunkOut whole;
  if (!grid) {
    whole.array = index;
    whole.grid.assign(leaf.shape.size(), 0);
    whole.owned.reset(new char[array.chunk_bytes],
                      std::default_delete<char[]>());
    whole.data = whole.owned.get();
  }
  for (size_t k = 0; k < leaf.pieces.size(); ++k) {
    const StoredPiece& p = leaf.pieces[k];
    auto it = pieces.find(key_path_repr(piece_path(leaf.path, k)));
    if (it == pieces.end()) {
      if (p.process == call.process_index) {
        throw Error(CKPT_ERROR_INTERNAL, where + ": piece " +
                                             std::to_string(k) +
                                             " is missing from the snapshot");
      }
      continue;  // another process writes it
    }
    const char* bytes = static_cast<const char*>(it->second->data);
    if (!grid) {
      copy_box(bytes, p.offset, p.shape, leaf.shape, item, whole.owned.get());
      continue;
    }
    ChunkOut c;
    c.array = index;
    for (size_t d = 0; d < p.offset.size(); ++d) {
      c.grid.push_back(p.offset[d] / array.chunk[d]);
    }
    if (p.shape == array.chunk) {
      c.data = bytes;
    } else {
      // A cell cut by the array's edge is stored whole, the rest fill.
      c.owned.reset(new char[array.chunk_bytes](),
                    std::default_delete<char[]>());
      copy_box(bytes, std::vector<int64_t>(p.shape.size(), 0), p.shape,
               array.chunk, item, c.owned.get());
      c.data = c.owned.get();
    }
    set.chunks.push_back(std::move(c));
  }
  if (!grid) set.chunks.push_back(std::move(whole));
}

// What this process writes: the primary host every array leaf and every
// scalar (as a 0-d array) with its zarr.json; every process the chunks of
// the pieces of sharded arrays placed on it.
WriteSet write_set(const Snapshot& snapshot, const ckpt::sdk::Call& call,
                   const std::string& what) {
  std::vector<const ArrayBytes*> bytes_of(snapshot.metadata.leaves.size(),
                                          nullptr);
  for (const ArrayBytes& b : snapshot.arrays) bytes_of[b.leaf] = &b;
  const auto pieces = piece_bytes(snapshot);
  WriteSet set;
  for (size_t i = 0; i < snapshot.metadata.leaves.size(); ++i) {
    const LeafRecord& leaf = snapshot.metadata.leaves[i];
    ArrayOut a;
    a.name = orbax_param_name(leaf.path);
    a.described_here = call.is_primary_host;
    if (leaf.kind == LeafKind::kArray && leaf.sharded) {
      a.dtype = leaf.dtype;
      a.shape = leaf.shape;
      add_sharded(set, std::move(a), leaf, pieces, call, what);
      continue;
    }
    if (!call.is_primary_host) continue;
    ChunkOut c;
    if (leaf.kind == LeafKind::kArray) {
      a.dtype = leaf.dtype;
      a.shape = leaf.shape;
      if (leaf.location.packed || !bytes_of[i]) {
        if (element_count(leaf.shape) != 0) {
          throw Error(CKPT_ERROR_INTERNAL,
                      what + ": key path " + key_path_repr(leaf.path) +
                          ": array bytes missing from the snapshot");
        }
      } else {
        c.data = static_cast<const char*>(bytes_of[i]->data);
      }
    } else if (leaf.kind == LeafKind::kBool || leaf.kind == LeafKind::kInt ||
               leaf.kind == LeafKind::kDouble) {
      c.owned.reset(new char[8](), std::default_delete<char[]>());
      if (leaf.kind == LeafKind::kBool) {
        a.dtype = CKPT_DTYPE_BOOL;
        c.owned.get()[0] = leaf.bool_value ? 1 : 0;
      } else if (leaf.kind == LeafKind::kInt) {
        a.dtype = CKPT_DTYPE_INT64;
        std::memcpy(c.owned.get(), &leaf.int_value, 8);
      } else {
        a.dtype = CKPT_DTYPE_FLOAT64;
        std::memcpy(c.owned.get(), &leaf.double_value, 8);
      }
      c.data = c.owned.get();
    } else {
      continue;
    }
    a.chunk = a.shape;
    for (int64_t& d : a.chunk) d = std::max<int64_t>(d, 1);
    c.array = add_array(set, std::move(a));
    c.grid.assign(set.arrays[c.array].shape.size(), 0);
    if (set.arrays[c.array].inner_count > 0) set.chunks.push_back(std::move(c));
  }
  return set;
}

std::string process_database(int process) {
  return "ocdbt.process_" + std::to_string(process) + "/";
}

void create_folder(const fs::path& path, const std::string& what) {
  try {
    fs::create_directories(path);
  } catch (const fs::filesystem_error& e) {
    throw Error(CKPT_ERROR_INTERNAL,
                what + ": cannot create " + path.string() +
                    " for its OCDBT database: " + e.code().message());
  }
}

}  // namespace

void check_orbax_names(const Snapshot& snapshot, const std::string& what) {
  std::map<std::string, const LeafRecord*> seen;
  for (const LeafRecord& leaf : snapshot.metadata.leaves) {
    const std::string where = what + ": key path " + key_path_repr(leaf.path);
    if (leaf.path.empty()) {
      throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                  where +
                      ": Orbax's storage names each leaf by its keys; "
                      "save a dict or list, not a bare leaf");
    }
    for (const KeyEntry& k : leaf.path) {
      if (k.key.find('/') != std::string::npos) {
        throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                    where + ": the key '" + k.key +
                        "' holds '/', which Orbax's storage cannot name");
      }
    }
    const std::string name = orbax_param_name(leaf.path);
    auto [it, fresh] = seen.emplace(name, &leaf);
    if (!fresh) {
      throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                  where + " and " + key_path_repr(it->second->path) +
                      " both become Orbax's parameter name '" + name +
                      "' (keys joined by '.'); rename one");
    }
  }
}

void write_orbax_pytree(const ckpt::sdk::Call& call, const Snapshot& snapshot,
                        const OrbaxWriteOptions& options,
                        const std::string& what) {
  const std::string& folder = call.directory;
  WriteSet set = write_set(snapshot, call, what);
  const std::string database = process_database(call.process_index);
  create_folder(fs::path(folder) / database / "d", what);
  const std::vector<ocdbt::DataFile> value_files = {
      {"", "d/" + ocdbt::random_hex(16)}};
  ValueFile file(folder + "/" + database + value_files[0].relative_path,
                 call.file_mode, what);
  write_shards(set, file, options);
  std::vector<ocdbt::Entry> entries;
  for (const ArrayOut& a : set.arrays) {
    if (!a.described_here) continue;
    ocdbt::Entry meta;
    meta.key = a.name + "/zarr.json";
    meta.value.value = zarr_json(a, options);
    if (meta.value.value.size() > ocdbt::kMaxInlineValueBytes) {
      meta.value.is_inline = false;
      meta.value.ref = {
          0, file.append(meta.value.value.data(), meta.value.value.size()),
          meta.value.value.size()};
      meta.value.value.clear();
    }
    entries.push_back(std::move(meta));
  }
  for (ChunkOut& c : set.chunks) {
    ocdbt::Entry chunk;
    chunk.key = chunk_key(set.arrays[c.array], c);
    if (c.is_inline) {
      chunk.value.value = std::move(c.small);
    } else {
      chunk.value.is_inline = false;
      chunk.value.ref = {0, c.offset, c.length};
    }
    entries.push_back(std::move(chunk));
  }
  file.close();
  std::sort(entries.begin(), entries.end(),
            [](const ocdbt::Entry& x, const ocdbt::Entry& y) {
              return x.key < y.key;
            });
  ocdbt::write_database(folder, database, entries, value_files, call.file_mode);
  if (call.process_count == 1) {
    // The root database refers to the same values; with many processes,
    // merge_orbax_databases writes it once every process's is there.
    create_folder(fs::path(folder) / "d", what);
    ocdbt::write_database(folder, "", entries,
                          {{database, value_files[0].relative_path}},
                          call.file_mode);
  }
  if (!call.is_primary_host) return;
  json strings = json::object();
  for (const LeafRecord& leaf : snapshot.metadata.leaves) {
    if (leaf.kind == LeafKind::kString) {
      strings[orbax_param_name(leaf.path)] = leaf.string_value;
    }
  }
  if (!strings.empty()) {
    ckpt::sdk::write_file(ckpt::sdk::join_path(folder, kStringsFile),
                          strings.dump(), call.file_mode);
  }
  ckpt::sdk::write_file(ckpt::sdk::join_path(folder, kMetadataFile),
                        orbax_metadata(snapshot.metadata), call.file_mode);
}

void merge_orbax_databases(const ckpt::sdk::Call& call,
                           const std::string& what) {
  std::vector<ocdbt::Entry> entries;
  std::vector<ocdbt::DataFile> files;
  for (int p = 0; p < call.process_count; ++p) {
    const std::string database = process_database(p);
    const std::string path = ckpt::sdk::join_path(call.directory, database);
    std::error_code ec;
    // A process that held nothing of the tree wrote no database.
    if (!fs::exists(path + "manifest.ocdbt", ec)) continue;
    ocdbt::add_entries(ocdbt::Database(path, what), database, entries, files);
  }
  std::stable_sort(entries.begin(), entries.end(),
                   [](const ocdbt::Entry& x, const ocdbt::Entry& y) {
                     return x.key < y.key;
                   });
  for (size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].key == entries[i - 1].key) {
      throw Error(CKPT_ERROR_INTERNAL,
                  what + ": two processes wrote the key '" + entries[i].key +
                      "' of its OCDBT database");
    }
  }
  create_folder(fs::path(call.directory) / "d", what);
  ocdbt::write_database(call.directory, "", entries, files, call.file_mode);
}

}  // namespace ckpt::pytree
