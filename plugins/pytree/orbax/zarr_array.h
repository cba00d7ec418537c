// Zarr arrays as TensorStore's zarr3 and zarr drivers store them for
// Python Orbax: an array's metadata (zarr.json for v3, .zarray for v2) and
// the decoding of its chunks. Read only. Supported: the regular chunk grid;
// v3's default and v2 chunk key encodings and v2's dimension separators;
// v3's codecs bytes (either endianness), sharding_indexed (index at the
// start or end, nested too), zstd and crc32c, and v2's zstd compressor (or
// none) with C order; every data type ckpt has (bool, intN, uintN, float16,
// bfloat16, float32/64, complex64/128) and fill values in every form the
// specifications allow (numbers, "NaN", "Infinity", "-Infinity", "0x" bit
// patterns, [re, im], and v2's null). Anything else is Unsupported, naming
// it.
#ifndef CKPT_PLUGINS_PYTREE_ORBAX_ZARR_ARRAY_H_
#define CKPT_PLUGINS_PYTREE_ORBAX_ZARR_ARRAY_H_

#include <ckpt/abi.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "records/format_errors.h"

namespace ckpt::pytree::zarr {

// A chain of codecs, as zarr.json lists them: one array-to-bytes codec
// (bytes or sharding_indexed), then bytes-to-bytes codecs (zstd, crc32c)
// in the order they were applied when writing.
struct CodecChain {
  enum class BytesCodec { kZstd, kCrc32c };
  bool sharded = false;
  // "bytes": the element byte order.
  bool big_endian = false;
  // "sharding_indexed": the inner chunks' shape and codecs, the index's
  // codecs and where the index is.
  std::vector<int64_t> inner_chunk_shape;
  std::unique_ptr<CodecChain> inner;
  std::unique_ptr<CodecChain> index;
  bool index_at_end = true;
  std::vector<BytesCodec> bytes_codecs;
};

struct ArrayMetadata {
  ckpt_dtype dtype = CKPT_DTYPE_INVALID;
  std::vector<int64_t> shape;
  std::vector<int64_t> chunk_shape;  // of the regular chunk grid
  // Chunk keys: "c" + separator + indices joined by it (default), or the
  // indices joined by it (v2; "0" for a 0-d array).
  bool v2_keys = false;
  char separator = '/';
  CodecChain codecs;
  std::vector<unsigned char> fill_value;  // one element, native layout
};

// Parses zarr.json (zarr v3). Throws Damaged for what no writer produces (not
// JSON, not an array, a negative or too large shape, a chunk shape that does
// not fit its codecs) and Unsupported for what this reader does not decode.
ArrayMetadata parse_array_metadata(std::string_view zarr_json);

// Parses .zarray (zarr v2), with the same errors. A null fill value (no
// fill value) reads unwritten chunks as zeros, as TensorStore does.
ArrayMetadata parse_zarray(std::string_view zarray_json);

// The key, relative to the array's folder, of the chunk at grid position
// `index`.
std::string chunk_key(const ArrayMetadata& array,
                      const std::vector<int64_t>& index);

// Calls `visit` with the key of every chunk of the grid, in C order.
void for_each_chunk_key(const ArrayMetadata& array,
                        const std::function<void(const std::string&)>& visit);

// Reads the stored value of a key of the array's folder: nullopt when
// there is none.
using ChunkSource =
    std::function<std::optional<std::string>(const std::string& key)>;

// Reads the whole array into `out` (C order, array.shape, array.dtype's
// size per element). A chunk that was never written holds the fill value,
// unless `require_every_chunk` (Orbax's store_array_data_equal_to_fill_value:
// every chunk was written), when a missing chunk is Damaged. Throws
// Damaged naming the chunk's key for a chunk that does not decode to its
// shape.
void read_array(const ArrayMetadata& array, const ChunkSource& source,
                bool require_every_chunk, void* out);

}  // namespace ckpt::pytree::zarr

#endif  // CKPT_PLUGINS_PYTREE_ORBAX_ZARR_ARRAY_H_
