#include "orbax/zarr_array.h"

#include <ckpt/sdk/dtype.h>
#include <ckpt/sdk/json.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "orbax/crc32c.h"
#include "orbax/zstd_frame.h"
#include "tree/cast.h"
#include "tree/dtypes.h"

namespace ckpt::pytree::zarr {

namespace {

using json = nlohmann::json;

constexpr size_t kMaxRank = 32;
constexpr uint64_t kEmptyChunk = UINT64_MAX;  // a shard index's "absent"

std::string shown(const json& j) {
  std::string s = j.dump();
  return s.size() > 100 ? s.substr(0, 100) + "..." : s;
}

const json& member(const json& object, const char* name, const char* where) {
  auto it = object.find(name);
  if (it == object.end()) {
    throw Damaged(std::string(where) + " has no \"" + name + "\"");
  }
  return *it;
}

std::string string_member(const json& object, const char* name,
                          const char* where) {
  const json& v = member(object, name, where);
  if (!v.is_string()) {
    throw Damaged(std::string(where) + "'s \"" + name + "\" is not a string");
  }
  return v.get<std::string>();
}

// An object's "configuration", or an empty object when it has none.
json configuration(const json& codec) {
  auto it = codec.find("configuration");
  if (it == codec.end()) return json::object();
  if (!it->is_object()) throw Damaged("a codec configuration is not an object");
  return *it;
}

std::vector<int64_t> shape_of(const json& j, const char* what, bool positive) {
  if (!j.is_array() || j.size() > kMaxRank) {
    throw Damaged(std::string(what) + " is not a list of at most " +
                  std::to_string(kMaxRank) + " sizes");
  }
  std::vector<int64_t> out;
  for (const json& d : j) {
    if (!d.is_number_integer() || d.get<int64_t>() < (positive ? 1 : 0)) {
      throw Damaged(std::string(what) + " holds " + shown(d));
    }
    out.push_back(d.get<int64_t>());
  }
  return out;
}

// The chunk grid's extent in each dimension.
std::vector<int64_t> grid_of(const ArrayMetadata& array) {
  std::vector<int64_t> grid(array.shape.size());
  for (size_t d = 0; d < grid.size(); ++d) {
    grid[d] =
        (array.shape[d] + array.chunk_shape[d] - 1) / array.chunk_shape[d];
  }
  return grid;
}

// Steps `at` to the next grid position in C order.
void next_position(std::vector<int64_t>& at, const std::vector<int64_t>& grid) {
  for (size_t d = at.size(); d-- > 0;) {
    if (++at[d] < grid[d]) return;
    at[d] = 0;
  }
}

// A shape whose element count and byte count fit in int64.
void check_volume(const std::vector<int64_t>& shape, ckpt_dtype dtype,
                  const char* what) {
  if (!checked_size(shape, ckpt::sdk::dtype_size(dtype), nullptr, nullptr)) {
    throw Damaged(std::string(what) + " is too large for any array");
  }
}

ckpt_dtype dtype_of(const json& j) {
  if (!j.is_string()) {
    throw Unsupported("the data type " + shown(j) +
                      " (only the named data types are read)");
  }
  const std::string name = j.get<std::string>();
  const ckpt_dtype dtype = dtype_from_name(name);
  if (!is_valid_dtype(dtype)) {
    throw Unsupported("the data type \"" + name.substr(0, 100) + "\"");
  }
  return dtype;
}

// One float fill value, in any form zarr v3 allows, as a double; or, for a
// "0x" bit pattern, its bits written straight to `bits` (true returned).
bool float_fill(const json& j, size_t item, double& value,
                unsigned char* bits) {
  if (j.is_number()) {
    value = j.get<double>();
    return false;
  }
  if (j.is_string()) {
    const std::string s = j.get<std::string>();
    if (s == "NaN") {
      value = NAN;
      return false;
    }
    if (s == "Infinity") {
      value = INFINITY;
      return false;
    }
    if (s == "-Infinity") {
      value = -INFINITY;
      return false;
    }
    if (s.size() == 2 + 2 * item && s.rfind("0x", 0) == 0 &&
        s.find_first_not_of("0123456789abcdefABCDEF", 2) == std::string::npos) {
      uint64_t v = std::stoull(s.substr(2), nullptr, 16);
      for (size_t k = 0; k < item; ++k) bits[k] = (v >> (8 * k)) & 0xff;
      return true;
    }
  }
  throw Damaged("the fill value " + shown(j) + " is not a float");
}

std::vector<unsigned char> fill_value_of(const json& j, ckpt_dtype dtype) {
  const size_t item = ckpt::sdk::dtype_size(dtype);
  std::vector<unsigned char> out(item, 0);
  switch (dtype) {
    case CKPT_DTYPE_BOOL:
      if (!j.is_boolean()) throw Damaged("the fill value " + shown(j));
      out[0] = j.get<bool>() ? 1 : 0;
      return out;
    case CKPT_DTYPE_INT8:
    case CKPT_DTYPE_INT16:
    case CKPT_DTYPE_INT32:
    case CKPT_DTYPE_INT64:
    case CKPT_DTYPE_UINT8:
    case CKPT_DTYPE_UINT16:
    case CKPT_DTYPE_UINT32:
    case CKPT_DTYPE_UINT64: {
      if (!j.is_number_integer()) {
        throw Damaged("the fill value " + shown(j) + " is not an integer");
      }
      // Out-of-range values wrap as NumPy's cast does; a writer stores
      // only values of the type.
      if (j.is_number_unsigned()) {
        const uint64_t v = j.get<uint64_t>();
        cast_elements(CKPT_DTYPE_UINT64, &v, dtype, out.data(), 1);
      } else {
        const int64_t v = j.get<int64_t>();
        cast_elements(CKPT_DTYPE_INT64, &v, dtype, out.data(), 1);
      }
      return out;
    }
    case CKPT_DTYPE_COMPLEX64:
    case CKPT_DTYPE_COMPLEX128: {
      if (!j.is_array() || j.size() != 2) {
        throw Damaged("the fill value " + shown(j) + " is not [real, imag]");
      }
      const size_t part = item / 2;
      const ckpt_dtype part_dtype = dtype == CKPT_DTYPE_COMPLEX64
                                        ? CKPT_DTYPE_FLOAT32
                                        : CKPT_DTYPE_FLOAT64;
      for (size_t k = 0; k < 2; ++k) {
        double v = 0;
        if (!float_fill(j[k], part, v, out.data() + k * part)) {
          cast_elements(CKPT_DTYPE_FLOAT64, &v, part_dtype,
                        out.data() + k * part, 1);
        }
      }
      return out;
    }
    default: {  // the float types
      double v = 0;
      if (!float_fill(j, item, v, out.data())) {
        cast_elements(CKPT_DTYPE_FLOAT64, &v, dtype, out.data(), 1);
      }
      return out;
    }
  }
}

void parse_codecs(const json& list, CodecChain& chain, const char* where);

// "sharding_indexed": shards of inner chunks with an index of
// (offset, nbytes) pairs.
void parse_sharding(const json& config, CodecChain& chain) {
  chain.sharded = true;
  chain.inner_chunk_shape = shape_of(member(config, "chunk_shape", "sharding"),
                                     "the inner chunk_shape", true);
  chain.inner = std::make_unique<CodecChain>();
  parse_codecs(member(config, "codecs", "sharding"), *chain.inner,
               "the inner codecs");
  chain.index = std::make_unique<CodecChain>();
  parse_codecs(member(config, "index_codecs", "sharding"), *chain.index,
               "the index codecs");
  if (chain.index->sharded) {
    throw Unsupported("a sharded shard index");
  }
  for (auto c : chain.index->bytes_codecs) {
    if (c != CodecChain::BytesCodec::kCrc32c) {
      throw Unsupported("a compressed shard index");
    }
  }
  auto location = config.find("index_location");
  if (location != config.end()) {
    if (*location == "start") {
      chain.index_at_end = false;
    } else if (*location != "end") {
      throw Damaged("index_location " + shown(*location));
    }
  }
}

void parse_codecs(const json& list, CodecChain& chain, const char* where) {
  if (!list.is_array() || list.empty()) {
    throw Damaged(std::string(where) + " are not a list of codecs");
  }
  bool have_array_to_bytes = false;
  for (const json& codec : list) {
    if (!codec.is_object()) {
      throw Damaged(std::string(where) + " hold " + shown(codec));
    }
    const std::string name = string_member(codec, "name", "a codec");
    const json config = configuration(codec);
    if (name == "bytes" || name == "sharding_indexed") {
      if (have_array_to_bytes) {
        throw Damaged(std::string(where) + " have two array-to-bytes codecs");
      }
      have_array_to_bytes = true;
      if (name == "sharding_indexed") {
        parse_sharding(config, chain);
        continue;
      }
      auto endian = config.find("endian");
      if (endian != config.end()) {
        if (*endian == "big") {
          chain.big_endian = true;
        } else if (*endian != "little") {
          throw Damaged("the bytes codec's endian " + shown(*endian));
        }
      }
    } else if (name == "zstd" || name == "crc32c") {
      if (!have_array_to_bytes) {
        throw Unsupported("the codec \"" + name +
                          "\" before the array-to-bytes codec");
      }
      chain.bytes_codecs.push_back(name == "zstd"
                                       ? CodecChain::BytesCodec::kZstd
                                       : CodecChain::BytesCodec::kCrc32c);
    } else {
      throw Unsupported("the codec \"" + name.substr(0, 100) + "\"");
    }
  }
  if (!have_array_to_bytes) {
    throw Damaged(std::string(where) + " have no array-to-bytes codec");
  }
}

// Every shape a chain decodes to is checked once, here: a shard's inner
// chunks must tile it.
void check_chain(const CodecChain& chain, const std::vector<int64_t>& shape,
                 ckpt_dtype dtype) {
  check_volume(shape, dtype, "a chunk shape");
  if (!chain.sharded) return;
  if (chain.inner_chunk_shape.size() != shape.size()) {
    throw Damaged("the inner chunk shape has another rank than the shard");
  }
  std::vector<int64_t> grid;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] % chain.inner_chunk_shape[d] != 0) {
      throw Damaged("the inner chunk shape does not divide the shard's");
    }
    grid.push_back(shape[d] / chain.inner_chunk_shape[d]);
  }
  grid.push_back(2);
  check_volume(grid, CKPT_DTYPE_UINT64, "a shard index");
  check_chain(*chain.inner, chain.inner_chunk_shape, dtype);
}

void byte_swap(unsigned char* p, uint64_t count, size_t item) {
  for (uint64_t i = 0; i < count; ++i, p += item) std::reverse(p, p + item);
}

// Decodes `encoded` (the output of `chain`) into the `shape` elements of
// `dtype` at `out`.
void decode(const CodecChain& chain, ckpt_dtype dtype,
            const std::vector<int64_t>& shape, const unsigned char* fill,
            std::string_view encoded, unsigned char* out);

// Undoes the bytes-to-bytes codecs from the last one applied; returns the
// array-to-bytes codec's output. The last zstd before "bytes" decodes
// straight into `out` (then `*done` is set): its size is known.
std::string_view undo_bytes_codecs(const CodecChain& chain,
                                   std::string_view encoded, uint64_t raw_size,
                                   uint64_t limit, unsigned char* out,
                                   bool* done, std::string& storage) {
  *done = false;
  for (size_t k = chain.bytes_codecs.size(); k-- > 0;) {
    if (chain.bytes_codecs[k] == CodecChain::BytesCodec::kCrc32c) {
      if (encoded.size() < 4) throw Damaged("a chunk shorter than its CRC-32C");
      const auto* tail =
          reinterpret_cast<const unsigned char*>(encoded.data()) +
          encoded.size() - 4;
      const uint32_t stored = static_cast<uint32_t>(tail[0]) |
                              (static_cast<uint32_t>(tail[1]) << 8) |
                              (static_cast<uint32_t>(tail[2]) << 16) |
                              (static_cast<uint32_t>(tail[3]) << 24);
      encoded.remove_suffix(4);
      if (crc32c(encoded.data(), encoded.size()) != stored) {
        throw Damaged("CRC-32C mismatch");
      }
      continue;
    }
    if (k == 0 && !chain.sharded) {
      orbax::zstd_decompress_into(encoded, out, raw_size);
      *done = true;
      return {};
    }
    storage = orbax::zstd_decompress(encoded, limit);
    encoded = storage;
  }
  return encoded;
}

uint64_t load_u64(const unsigned char* p, bool big_endian) {
  uint64_t v = 0;
  for (int k = 0; k < 8; ++k) {
    v = (v << 8) | p[big_endian ? k : 7 - k];
  }
  return v;
}

// `count` elements of `item` bytes at `target`, each `fill`.
void fill_elements(unsigned char* target, uint64_t count,
                   const unsigned char* fill, size_t item) {
  for (uint64_t i = 0; i < count; ++i) {
    std::memcpy(target + i * item, fill, item);
  }
}

// Copies a decoded chunk of `chunk` shape, at grid position `at`, into the
// part of `out` (of `shape`) it covers (an edge chunk covers less).
void place_chunk(const unsigned char* chunk_bytes,
                 const std::vector<int64_t>& at,
                 const std::vector<int64_t>& chunk, unsigned char* out,
                 const std::vector<int64_t>& shape, size_t item) {
  std::vector<int64_t> offset(at.size());
  for (size_t d = 0; d < at.size(); ++d) offset[d] = at[d] * chunk[d];
  copy_overlap(chunk_bytes, offset, chunk, out,
               std::vector<int64_t>(at.size(), 0), shape, item);
}

void decode_shard(const CodecChain& chain, ckpt_dtype dtype,
                  const std::vector<int64_t>& shape, const unsigned char* fill,
                  std::string_view shard, unsigned char* out) {
  const size_t item = ckpt::sdk::dtype_size(dtype);
  const std::vector<int64_t>& inner = chain.inner_chunk_shape;
  const size_t rank = shape.size();
  std::vector<int64_t> grid(rank);
  for (size_t d = 0; d < rank; ++d) grid[d] = shape[d] / inner[d];
  const uint64_t chunks = element_count(grid);
  uint64_t index_size = chunks * 16;
  for (auto c : chain.index->bytes_codecs) {
    if (c == CodecChain::BytesCodec::kCrc32c) index_size += 4;
  }
  if (shard.size() < index_size) {
    throw Damaged("a shard of " + std::to_string(shard.size()) +
                  " bytes, shorter than its index of " +
                  std::to_string(index_size));
  }
  std::string_view index_bytes = chain.index_at_end
                                     ? shard.substr(shard.size() - index_size)
                                     : shard.substr(0, index_size);
  bool unused = false;
  std::string storage;
  index_bytes = undo_bytes_codecs(*chain.index, index_bytes, chunks * 16,
                                  chunks * 16, nullptr, &unused, storage);
  if (index_bytes.size() != chunks * 16) {
    throw Damaged("a shard index of the wrong size");
  }
  const auto* index =
      reinterpret_cast<const unsigned char*>(index_bytes.data());
  const bool whole = chunks == 1;
  std::vector<unsigned char> buffer;
  if (!whole) buffer.resize(element_count(inner) * item);
  std::vector<int64_t> at(rank, 0);  // grid position, C order
  for (uint64_t c = 0; c < chunks; ++c) {
    const uint64_t offset = load_u64(index + 16 * c, chain.index->big_endian);
    const uint64_t nbytes =
        load_u64(index + 16 * c + 8, chain.index->big_endian);
    unsigned char* target = whole ? out : buffer.data();
    const uint64_t count = element_count(inner);
    if (offset == kEmptyChunk && nbytes == kEmptyChunk) {
      fill_elements(target, count, fill, item);
    } else {
      if (offset > shard.size() || nbytes > shard.size() - offset) {
        throw Damaged("inner chunk " + std::to_string(c) + " at bytes [" +
                      std::to_string(offset) + ", +" + std::to_string(nbytes) +
                      ") lies beyond its shard of " +
                      std::to_string(shard.size()) + " bytes");
      }
      decode(*chain.inner, dtype, inner, fill, shard.substr(offset, nbytes),
             target);
    }
    if (!whole) {
      place_chunk(buffer.data(), at, inner, out, shape, item);
      next_position(at, grid);
    }
  }
}

void decode(const CodecChain& chain, ckpt_dtype dtype,
            const std::vector<int64_t>& shape, const unsigned char* fill,
            std::string_view encoded, unsigned char* out) {
  const size_t item = ckpt::sdk::dtype_size(dtype);
  const uint64_t count = element_count(shape);
  const uint64_t raw_size = count * item;
  // What the array-to-bytes codec's output may be: the raw bytes, or for
  // a shard its chunks' (no more than twice raw each, zstd's worst case
  // being far less) and its index.
  uint64_t limit = raw_size;
  if (chain.sharded) {
    uint64_t chunks = 1;
    for (size_t d = 0; d < shape.size(); ++d) {
      chunks *= static_cast<uint64_t>(shape[d] / chain.inner_chunk_shape[d]);
    }
    limit = std::min<uint64_t>(uint64_t{1} << 62, raw_size) * 2 +
            std::min<uint64_t>(uint64_t{1} << 61, chunks) * 20 + (1u << 20);
  }
  bool done = false;
  std::string storage;
  std::string_view bytes =
      undo_bytes_codecs(chain, encoded, raw_size, limit, out, &done, storage);
  if (chain.sharded) {
    decode_shard(chain, dtype, shape, fill, bytes, out);
    return;
  }
  if (!done) {
    if (bytes.size() != raw_size) {
      throw Damaged("a chunk of " + std::to_string(bytes.size()) +
                    " bytes where its shape needs " + std::to_string(raw_size));
    }
    std::memcpy(out, bytes.data(), bytes.size());
  }
  const size_t swap =
      dtype == CKPT_DTYPE_COMPLEX64 || dtype == CKPT_DTYPE_COMPLEX128 ? item / 2
                                                                      : item;
  if (chain.big_endian && swap > 1) byte_swap(out, raw_size / swap, swap);
}

// The JSON object of an array's metadata file `file`, of zarr `version`.
json parse_metadata_file(std::string_view text, const char* file, int version) {
  ckpt::sdk::check_json_depth(text, file);
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    throw Damaged("not a JSON object");
  }
  auto format = j.find("zarr_format");
  if (format == j.end() || *format != version) {
    throw Unsupported(
        "zarr_format " +
        (format == j.end() ? std::string("(none)") : shown(*format)) + " in " +
        file + " (read there: zarr v" + std::to_string(version) + ")");
  }
  return j;
}

// The array's shape and its regular grid's chunk shape, checked.
void set_shapes(ArrayMetadata& a, const json& shape, const json& chunk) {
  a.shape = shape_of(shape, "the shape", false);
  check_volume(a.shape, a.dtype, "the shape");
  a.chunk_shape = shape_of(chunk, "the chunk shape", true);
  if (a.chunk_shape.size() != a.shape.size()) {
    throw Damaged("the chunk shape has another rank than the array");
  }
  check_volume(a.chunk_shape, a.dtype, "the chunk shape");
}

// A chunk key separator.
char separator_of(const json& j, const char* what) {
  if (j == "/") return '/';
  if (j == ".") return '.';
  throw Damaged(std::string(what) + " " + shown(j));
}

}  // namespace

ArrayMetadata parse_array_metadata(std::string_view zarr_json) {
  const json j = parse_metadata_file(zarr_json, "zarr.json", 3);
  auto node_type = j.find("node_type");
  if (node_type != j.end() && *node_type != "array") {
    throw Damaged("node_type " + shown(*node_type) + ", not an array");
  }
  ArrayMetadata a;
  a.dtype = dtype_of(member(j, "data_type", "zarr.json"));
  const json& grid = member(j, "chunk_grid", "zarr.json");
  if (!grid.is_object() ||
      string_member(grid, "name", "the chunk grid") != "regular") {
    throw Unsupported("the chunk grid " + shown(grid) +
                      " (only \"regular\" grids are read)");
  }
  set_shapes(a, member(j, "shape", "zarr.json"),
             member(configuration(grid), "chunk_shape", "the chunk grid"));

  auto encoding = j.find("chunk_key_encoding");
  if (encoding != j.end()) {
    if (!encoding->is_object()) throw Damaged("chunk_key_encoding");
    const std::string name =
        string_member(*encoding, "name", "the chunk key encoding");
    if (name == "v2") {
      a.v2_keys = true;
      a.separator = '.';
    } else if (name != "default") {
      throw Unsupported("the chunk key encoding \"" + name.substr(0, 100) +
                        "\"");
    }
    const json config = configuration(*encoding);
    auto separator = config.find("separator");
    if (separator != config.end()) {
      a.separator = separator_of(*separator, "the chunk key separator");
    }
  }
  parse_codecs(member(j, "codecs", "zarr.json"), a.codecs, "the codecs");
  check_chain(a.codecs, a.chunk_shape, a.dtype);
  a.fill_value = fill_value_of(member(j, "fill_value", "zarr.json"), a.dtype);
  return a;
}

namespace {

// A NumPy type string of zarr v2 ("<f4", "|b1", ">i8"), or TensorStore's
// "bfloat16"; sets the array's byte order.
ckpt_dtype v2_dtype_of(const json& j, CodecChain& codecs) {
  if (!j.is_string()) {
    throw Unsupported("the data type " + shown(j) +
                      " (only simple NumPy type strings are read)");
  }
  const std::string s = j.get<std::string>();
  if (s == "bfloat16") return CKPT_DTYPE_BFLOAT16;
  static const std::pair<const char*, const char*> kNames[] = {
      {"b1", "bool"},      {"i1", "int8"},       {"i2", "int16"},
      {"i4", "int32"},     {"i8", "int64"},      {"u1", "uint8"},
      {"u2", "uint16"},    {"u4", "uint32"},     {"u8", "uint64"},
      {"f2", "float16"},   {"f4", "float32"},    {"f8", "float64"},
      {"c8", "complex64"}, {"c16", "complex128"}};
  if (s.size() >= 3 && (s[0] == '<' || s[0] == '>' || s[0] == '|')) {
    for (const auto& [code, name] : kNames) {
      if (s.compare(1, std::string::npos, code) == 0) {
        codecs.big_endian = s[0] == '>';
        return dtype_from_name(name);
      }
    }
  }
  throw Unsupported("the data type \"" + s.substr(0, 100) + "\"");
}

}  // namespace

ArrayMetadata parse_zarray(std::string_view zarray_json) {
  const json j = parse_metadata_file(zarray_json, ".zarray", 2);
  ArrayMetadata a;
  a.v2_keys = true;
  a.separator = '.';
  a.dtype = v2_dtype_of(member(j, "dtype", ".zarray"), a.codecs);
  set_shapes(a, member(j, "shape", ".zarray"), member(j, "chunks", ".zarray"));
  auto order = j.find("order");
  if (order != j.end() && *order != "C") {
    throw Unsupported("the element order " + shown(*order) +
                      " (only \"C\" is read)");
  }
  auto separator = j.find("dimension_separator");
  if (separator != j.end()) {
    a.separator = separator_of(*separator, "the dimension separator");
  }
  auto filters = j.find("filters");
  if (filters != j.end() && !filters->is_null() &&
      !(filters->is_array() && filters->empty())) {
    throw Unsupported("the filters " + shown(*filters));
  }
  auto compressor = j.find("compressor");
  if (compressor != j.end() && !compressor->is_null()) {
    if (!compressor->is_object()) throw Damaged("the compressor");
    const std::string id = string_member(*compressor, "id", "the compressor");
    if (id != "zstd") {
      throw Unsupported("the compressor \"" + id.substr(0, 100) + "\"");
    }
    a.codecs.bytes_codecs.push_back(CodecChain::BytesCodec::kZstd);
  }
  const json& fill = member(j, "fill_value", ".zarray");
  if (fill.is_null()) {
    a.fill_value.assign(ckpt::sdk::dtype_size(a.dtype), 0);
  } else {
    a.fill_value = fill_value_of(fill, a.dtype);
  }
  return a;
}

std::string chunk_key(const ArrayMetadata& array,
                      const std::vector<int64_t>& index) {
  std::string key = array.v2_keys ? "" : "c";
  for (size_t d = 0; d < index.size(); ++d) {
    if (d > 0 || !array.v2_keys) key += array.separator;
    key += std::to_string(index[d]);
  }
  if (array.v2_keys && index.empty()) key = "0";
  return key;
}

void for_each_chunk_key(const ArrayMetadata& array,
                        const std::function<void(const std::string&)>& visit) {
  const std::vector<int64_t> grid = grid_of(array);
  std::vector<int64_t> at(grid.size(), 0);
  const uint64_t chunks = element_count(grid);
  for (uint64_t c = 0; c < chunks; ++c, next_position(at, grid)) {
    visit(chunk_key(array, at));
  }
}

void read_array(const ArrayMetadata& array, const ChunkSource& source,
                bool require_every_chunk, void* out) {
  const size_t item = ckpt::sdk::dtype_size(array.dtype);
  const size_t rank = array.shape.size();
  auto* dst = static_cast<unsigned char*>(out);
  if (element_count(array.shape) == 0) return;
  const std::vector<int64_t> grid = grid_of(array);
  // One chunk exactly the array's shape decodes in place.
  const bool whole = array.chunk_shape == array.shape;
  std::vector<unsigned char> buffer;
  if (!whole) buffer.resize(element_count(array.chunk_shape) * item);
  std::vector<int64_t> at(rank, 0);
  const uint64_t chunks = element_count(grid);
  for (uint64_t c = 0; c < chunks; ++c) {
    const std::string key = chunk_key(array, at);
    unsigned char* target = whole ? dst : buffer.data();
    std::optional<std::string> stored = source(key);
    if (!stored) {
      if (require_every_chunk) {
        throw Damaged("chunk " + key +
                      " is missing (the writer stored every chunk)");
      }
      fill_elements(target, element_count(array.chunk_shape),
                    array.fill_value.data(), item);
    } else {
      try {
        decode(array.codecs, array.dtype, array.chunk_shape,
               array.fill_value.data(), *stored, target);
      } catch (const Damaged& e) {
        throw Damaged("chunk " + key + ": " + e.what());
      }
    }
    if (!whole) {
      place_chunk(buffer.data(), at, array.chunk_shape, dst, array.shape, item);
    }
    next_position(at, grid);
  }
}

}  // namespace ckpt::pytree::zarr
