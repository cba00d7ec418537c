// Writes pytrees in Python Orbax's storage for the tests: zarr v3 (or v2)
// arrays in an OCDBT database (TensorStore's formats), encoded from the two
// specifications, with the knobs reader tests need (zarr v2, big-endian,
// skipped fill chunks, several processes, numbered manifests) that the
// plugin's own writer (plugins/pytree/orbax/orbax_writer.h) never uses.
//
// The layout is Orbax's: the checkpointable's folder holds _METADATA, the
// root database (manifest.ocdbt, d/) and one sub-database per process
// (ocdbt.process_<p>/manifest.ocdbt, d/), whose data files hold the arrays'
// chunks; the root's B+tree refers to them.
#ifndef CKPT_TESTS_ORBAX_WRITER_H_
#define CKPT_TESTS_ORBAX_WRITER_H_

#include <ckpt/abi.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ckpt::test::orbax {

namespace fs = std::filesystem;

// One leaf of the tree.
struct Leaf {
  std::vector<std::string> path;  // dict keys from the root
  // "jax.Array", "np.ndarray", "scalar" (a 0-d array) or "string".
  std::string value_type = "jax.Array";
  ckpt_dtype dtype = CKPT_DTYPE_FLOAT32;
  std::vector<int64_t> shape;
  std::string bytes;  // C order, little-endian elements
  std::string text;   // a string leaf's value
  // The chunk grid (empty: one chunk of the whole shape), and the inner
  // chunks of each shard (empty: one per shard). sharded = false writes
  // the codecs bytes (+ zstd) without sharding_indexed.
  std::vector<int64_t> chunk_shape;
  std::vector<int64_t> inner_chunk_shape;
  bool sharded = true;
  bool compress = true;
  bool big_endian = false;
  // The fill value in zarr.json, and the same as one element's bytes
  // (empty: all zero).
  std::string fill_value_json = "0";
  std::string fill_bytes;
  int process = 0;  // whose sub-database holds its chunks
  // Options::zarr2: the .zarray's dimension_separator.
  char separator = '.';
};

struct Options {
  int processes = 1;
  bool compress_nodes = true;
  uint32_t max_inline_value_bytes = 1024;
  // The root B+tree: one leaf node (0), or an interior node over leaf
  // nodes of at most `keys_per_leaf` keys each (1).
  int root_height = 1;
  size_t keys_per_leaf = 3;
  // Leave out chunks (and inner chunks) that are all fill value; _METADATA
  // then says store_array_data_equal_to_fill_value false.
  bool skip_fill_chunks = false;
  // Use the numbered manifest kind for the root database.
  bool numbered_manifest = false;
  // Write zarr v2 arrays (.zarray, compressor zstd or none; leaves must not
  // be sharded), as older Orbax did (use_zarr3 false).
  bool zarr2 = false;
};

// What was written, relative to the checkpointable's folder.
struct Written {
  std::vector<std::string> manifests;    // manifest.ocdbt and the like
  std::vector<std::string> node_files;   // B+tree nodes
  std::vector<std::string> value_files;  // chunks
};

// Writes the pytree's folder `folder` (created).
Written write_pytree(const fs::path& folder, const std::vector<Leaf>& leaves,
                     const Options& options = {});

// Writes a v1 checkpoint `dir` (created) whose checkpointable `state` is
// that pytree, as Orbax's save_checkpointables would.
Written write_checkpoint(const fs::path& dir, const std::vector<Leaf>& leaves,
                         const Options& options = {});

// The encodings, for tests of the reader's limits.
std::string varint(uint64_t v);
// Frames `body` as OCDBT does: magic, length, version 0, compression (zstd
// when `zstd`), CRC-32C.
std::string frame(uint32_t magic, const std::string& body, bool zstd);

}  // namespace ckpt::test::orbax

#endif  // CKPT_TESTS_ORBAX_WRITER_H_
