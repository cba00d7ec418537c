#include "orbax/ocdbt_format.h"

#include <algorithm>
#include <memory>

#include "orbax/crc32c.h"
#include "orbax/zstd_frame.h"

namespace ckpt::pytree::ocdbt {

namespace {

std::string hex32(uint32_t v) {
  static const char* digits = "0123456789abcdef";
  std::string s = "0x";
  for (int shift = 28; shift >= 0; shift -= 4) s += digits[(v >> shift) & 15];
  return s;
}

// An index into a data file table of `count` entries.
uint32_t file_index(ByteReader& r, size_t count) {
  const uint64_t index = r.varint("data_file_id");
  if (index >= count) {
    throw Damaged("data file id " + std::to_string(index) +
                  " is outside the data file table (" + std::to_string(count) +
                  " files)");
  }
  return static_cast<uint32_t>(index);
}

// A reference's offset and length: their end must fit in int64.
void check_range(const DataRef& ref, bool allow_missing) {
  if (allow_missing && ref.missing()) return;
  if (ref.offset > static_cast<uint64_t>(INT64_MAX) ||
      ref.length > static_cast<uint64_t>(INT64_MAX) - ref.offset) {
    throw Damaged("the offset " + std::to_string(ref.offset) + " and length " +
                  std::to_string(ref.length) +
                  " of a data reference are out of range");
  }
}

// Reads `n` varints of at most `max` each into `out`.
void read_column(ByteReader& r, size_t n, const char* field, uint64_t max,
                 std::vector<uint64_t>& out) {
  out.resize(n);
  for (uint64_t& v : out) v = r.varint(field, max);
}

// Every count read from disk is checked against the bytes left: each
// element takes at least `min_bytes` bytes.
void check_count(const ByteReader& r, uint64_t n, uint64_t min_bytes,
                 const char* what) {
  if (n > r.remaining() / std::max<uint64_t>(1, min_bytes)) {
    throw Damaged(std::string(what) + " count " + std::to_string(n) +
                  " is more than the remaining " +
                  std::to_string(r.remaining()) + " bytes can hold");
  }
}

// A data file table: paths relative to the database's folder, each
// prefixed by `transitive` (the base path of the file it was read from).
std::vector<DataFile> read_data_file_table(ByteReader& r,
                                           const std::string& transitive) {
  if (transitive.size() > kMaxPathLength) {
    throw Damaged("a base path is longer than " +
                  std::to_string(kMaxPathLength) + " bytes");
  }
  const uint64_t max_length = kMaxPathLength - transitive.size();
  const uint64_t n = r.varint("num_files");
  check_count(r, n, 2, "data file");  // a suffix and a base path length
  std::vector<uint64_t> prefix(n, 0), suffix, base;
  for (uint64_t i = 1; i < n; ++i) prefix[i] = r.varint("path_prefix_length");
  read_column(r, n, "path_suffix_length", max_length, suffix);
  read_column(r, n, "base_path_length", max_length, base);
  std::vector<DataFile> files(n);
  std::string previous;  // the previous file's path without `transitive`
  for (uint64_t i = 0; i < n; ++i) {
    if (prefix[i] > previous.size()) {
      throw Damaged("path_prefix_length[" + std::to_string(i) +
                    "] is longer than the previous path");
    }
    const uint64_t length = prefix[i] + suffix[i];
    if (length > max_length) {
      throw Damaged("data file path " + std::to_string(i) + " is longer than " +
                    std::to_string(kMaxPathLength) + " bytes");
    }
    if (base[i] > length) {
      throw Damaged("base_path_length[" + std::to_string(i) +
                    "] is longer than its path");
    }
    std::string path = previous.substr(0, prefix[i]);
    path += r.bytes(suffix[i]);
    files[i].base_path = transitive + path.substr(0, base[i]);
    files[i].relative_path = path.substr(base[i]);
    previous = std::move(path);
  }
  return files;
}

Config read_config(ByteReader& r) {
  Config c;
  std::string_view uuid = r.bytes(16);
  std::copy(uuid.begin(), uuid.end(), c.uuid);
  c.manifest_kind = r.u8();
  if (c.manifest_kind > 1) {
    throw Damaged("unknown manifest_kind " + std::to_string(c.manifest_kind));
  }
  c.max_inline_value_bytes =
      static_cast<uint32_t>(r.varint("max_inline_value_bytes", UINT32_MAX));
  c.max_decoded_node_bytes =
      static_cast<uint32_t>(r.varint("max_decoded_node_bytes", UINT32_MAX));
  c.version_tree_arity_log2 = r.u8();
  if (c.version_tree_arity_log2 == 0 ||
      c.version_tree_arity_log2 > kMaxVersionTreeArityLog2) {
    throw Damaged("version_tree_arity_log2 " +
                  std::to_string(c.version_tree_arity_log2) +
                  " is outside [1, 16]");
  }
  c.compression = static_cast<uint32_t>(r.varint("compression_method"));
  if (c.compression == 1) {
    c.zstd_level = static_cast<int32_t>(r.u32_le());
  } else if (c.compression != 0) {
    throw Damaged("unknown compression method " +
                  std::to_string(c.compression));
  }
  return c;
}

// The manifest's newest generations (a version tree leaf node's entries).
std::vector<Version> read_versions(ByteReader& r, const Config& config,
                                   size_t files) {
  const uint64_t max = uint64_t{1} << config.version_tree_arity_log2;
  const uint64_t n = r.varint("num_versions", max);
  if (n == 0) throw Damaged("a manifest without generations");
  check_count(r, n, 8, "version");  // a commit time each
  std::vector<Version> v(n);
  for (Version& e : v) {
    e.generation = r.varint("generation_number");
  }
  for (Version& e : v) e.root_height = r.u8();
  for (Version& e : v) e.root.file = file_index(r, files);
  for (Version& e : v) e.root.offset = r.varint("offset");
  for (Version& e : v) e.root.length = r.varint("length");
  for (Version& e : v) check_range(e.root, /*allow_missing=*/true);
  for (Version& e : v) e.num_keys = r.varint("num_keys");
  for (Version& e : v) e.num_tree_bytes = r.varint("num_tree_bytes");
  for (Version& e : v) {
    e.num_indirect_value_bytes = r.varint("num_indirect_value_bytes");
  }
  for (Version& e : v) e.commit_time = r.u64_le();
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i].generation == 0) throw Damaged("generation number 0");
    if (i > 0 && v[i].generation <= v[i - 1].generation) {
      throw Damaged("generation numbers out of order");
    }
    if (v[i].root.missing() && v[i].root_height != 0) {
      throw Damaged("an empty generation with a root height");
    }
  }
  // All in one version tree leaf: the same block of 2^arity generations.
  if ((v.front().generation - 1) >> config.version_tree_arity_log2 !=
      (v.back().generation - 1) >> config.version_tree_arity_log2) {
    throw Damaged("the manifest's generations span two version tree leaves");
  }
  return v;
}

// The references to version tree nodes of older generations: checked for
// their shape, not followed.
size_t read_version_nodes(ByteReader& r, const Config& config, size_t files) {
  const uint64_t max_height = 63 / config.version_tree_arity_log2 - 1;
  const uint64_t n = r.varint("num_version_tree_nodes", max_height);
  std::vector<uint64_t> generation(n);
  for (uint64_t& g : generation) g = r.varint("generation_number");
  for (uint64_t i = 0; i < n; ++i) file_index(r, files);
  for (uint64_t i = 0; i < n; ++i) r.varint("offset");
  for (uint64_t i = 0; i < n; ++i) r.varint("length");
  for (uint64_t i = 0; i < n; ++i) r.varint("num_generations");
  for (uint64_t i = 0; i < n; ++i) r.u64_le();  // commit_time
  uint8_t previous_height = 0;
  for (uint64_t i = 0; i < n; ++i) {
    const uint8_t height = r.u8();
    if (height == 0 || height > max_height) {
      throw Damaged("a version tree node of height " + std::to_string(height));
    }
    if (i > 0 &&
        (height >= previous_height || generation[i] <= generation[i - 1])) {
      throw Damaged("version tree nodes out of order");
    }
    previous_height = height;
  }
  return n;
}

void read_keys(ByteReader& r, size_t n, bool interior, uint64_t body_size,
               std::vector<std::string>& keys, std::vector<uint64_t>& scp) {
  std::vector<uint64_t> prefix(n, 0), suffix;
  for (size_t i = 1; i < n; ++i) {
    prefix[i] = r.varint("key_prefix_length", kMaxKeyLength);
  }
  read_column(r, n, "key_suffix_length", kMaxKeyLength, suffix);
  if (interior) {
    read_column(r, n, "subtree_common_prefix_length", kMaxKeyLength, scp);
  }
  const uint64_t max_key_bytes = std::min<uint64_t>(
      kMaxDecodedBytes, body_size * kKeyBytesPerNodeByte + (1u << 20));
  uint64_t key_bytes = 0;
  keys.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string empty;
    const std::string& previous = i > 0 ? keys[i - 1] : empty;
    if (prefix[i] > previous.size()) {
      throw Damaged("key " + std::to_string(i) +
                    ": its prefix is longer than the previous key");
    }
    if (prefix[i] + suffix[i] > kMaxKeyLength) {
      throw Damaged("key " + std::to_string(i) + " is longer than " +
                    std::to_string(kMaxKeyLength) + " bytes");
    }
    key_bytes += prefix[i] + suffix[i];
    if (key_bytes > max_key_bytes) {
      throw Damaged("the node's keys add up to more than " +
                    std::to_string(max_key_bytes) + " bytes");
    }
    std::string_view tail = r.bytes(suffix[i]);
    if (i > 0 &&
        std::string_view(previous).substr(prefix[i]).compare(tail) >= 0) {
      throw Damaged("keys out of order at entry " + std::to_string(i));
    }
    keys[i].reserve(prefix[i] + suffix[i]);
    keys[i].assign(previous, 0, prefix[i]);
    keys[i] += tail;
    if (interior && scp[i] > keys[i].size()) {
      throw Damaged("entry " + std::to_string(i) +
                    ": subtree_common_prefix_length is longer than its key");
    }
  }
}

// Keys and values are columns: first every key, then every value length,
// and so on (index.rst, "B+tree node format").
void read_leaf_values(ByteReader& r, BtreeNode& node) {
  const size_t n = node.leaves.size();
  std::vector<uint64_t> length;
  read_column(r, n, "value_length", UINT64_MAX, length);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t kind = r.u8();
    if (kind > 1) {
      throw Damaged("value_kind " + std::to_string(kind) + " of entry " +
                    std::to_string(i));
    }
    node.leaves[i].is_inline = kind == 0;
    if (kind == 0 && length[i] > kMaxInlineValueLength) {
      throw Damaged("an inline value of " + std::to_string(length[i]) +
                    " bytes");
    }
    node.leaves[i].ref.length = length[i];
  }
  for (LeafEntry& e : node.leaves) {
    if (!e.is_inline) e.ref.file = file_index(r, node.files.size());
  }
  for (LeafEntry& e : node.leaves) {
    if (e.is_inline) continue;
    e.ref.offset = r.varint("offset");
    check_range(e.ref, /*allow_missing=*/false);
  }
  for (LeafEntry& e : node.leaves) {
    if (!e.is_inline) continue;
    e.value = std::string(r.bytes(e.ref.length));
    e.ref = DataRef();
  }
}

void read_children(ByteReader& r, BtreeNode& node) {
  const size_t files = node.files.size();
  for (InteriorEntry& e : node.children) e.child.file = file_index(r, files);
  for (InteriorEntry& e : node.children) e.child.offset = r.varint("offset");
  for (InteriorEntry& e : node.children) e.child.length = r.varint("length");
  for (InteriorEntry& e : node.children) {
    check_range(e.child, /*allow_missing=*/false);
  }
  for (InteriorEntry& e : node.children) e.num_keys = r.varint("num_keys");
  for (InteriorEntry& e : node.children) {
    e.num_tree_bytes = r.varint("num_tree_bytes");
  }
  for (InteriorEntry& e : node.children) {
    e.num_indirect_value_bytes = r.varint("num_indirect_value_bytes");
  }
}

}  // namespace

uint8_t ByteReader::u8() { return static_cast<uint8_t>(bytes(1)[0]); }

uint32_t ByteReader::u32_le() {
  std::string_view b = bytes(4);
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[i]);
  return v;
}

uint64_t ByteReader::u64_le() {
  std::string_view b = bytes(8);
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[i]);
  return v;
}

uint32_t ByteReader::u32_be() {
  std::string_view b = bytes(4);
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(b[i]);
  return v;
}

uint64_t ByteReader::varint(const char* field, uint64_t max) {
  uint64_t v = 0;
  for (int shift = 0;; shift += 7) {
    if (pos_ >= bytes_.size()) {
      throw Damaged(std::string("the data ends early (in ") + field + ")");
    }
    const uint8_t b = static_cast<uint8_t>(bytes_[pos_++]);
    if (shift == 63 && b > 1) {
      throw Damaged(std::string("an invalid varint (") + field + ")");
    }
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) break;
  }
  if (v > max) {
    throw Damaged(std::string(field) + " " + std::to_string(v) +
                  " is above its limit of " + std::to_string(max));
  }
  return v;
}

std::string_view ByteReader::bytes(uint64_t n) {
  if (n > bytes_.size() - pos_) throw Damaged("the data ends early");
  std::string_view out = bytes_.substr(pos_, n);
  pos_ += n;
  return out;
}

void ByteReader::expect_end(const char* what) const {
  if (pos_ != bytes_.size()) {
    throw Damaged(std::to_string(bytes_.size() - pos_) +
                  " unexpected bytes after the " + what);
  }
}

std::string decode_frame(std::string_view encoded, uint32_t magic,
                         uint64_t max_decoded_bytes) {
  constexpr size_t kMinLength = 4 + 8 + 4;
  if (encoded.size() < kMinLength) {
    throw Damaged("only " + std::to_string(encoded.size()) +
                  " bytes (at least 16 expected)");
  }
  ByteReader r(encoded.substr(0, encoded.size() - 4));
  const uint32_t found = r.u32_be();
  if (found != magic) {
    throw Damaged("it starts with " + hex32(found) + ", not " + hex32(magic));
  }
  const uint64_t length = r.u64_le();
  if (length != encoded.size()) {
    throw Damaged("its header says " + std::to_string(length) +
                  " bytes, but it has " + std::to_string(encoded.size()));
  }
  ByteReader tail(encoded.substr(encoded.size() - 4));
  const uint32_t stored = tail.u32_le();
  const uint32_t actual = crc32c(encoded.data(), encoded.size() - 4);
  if (stored != actual) {
    throw Damaged("CRC-32C mismatch (stored " + hex32(stored) + ", computed " +
                  hex32(actual) + ")");
  }
  const uint64_t version = r.varint("version");
  if (version != 0) {
    throw Damaged("format version " + std::to_string(version) +
                  " (this reader knows version 0)");
  }
  const uint64_t compression = r.varint("compression");
  std::string_view body = r.bytes(r.remaining());
  if (compression == 0) {
    if (body.size() > max_decoded_bytes) {
      throw Damaged("a body of " + std::to_string(body.size()) +
                    " bytes, more than the " +
                    std::to_string(max_decoded_bytes) + " allowed");
    }
    return std::string(body);
  }
  if (compression == 1) return orbax::zstd_decompress(body, max_decoded_bytes);
  throw Damaged("unknown compression format " + std::to_string(compression));
}

Manifest decode_manifest(std::string_view encoded) {
  const std::string body =
      decode_frame(encoded, kManifestMagic, kMaxDecodedBytes);
  ByteReader r(body);
  Manifest m;
  m.config = read_config(r);
  if (m.config.manifest_kind == 1) {
    r.expect_end("configuration");
    return m;
  }
  m.files = read_data_file_table(r, "");
  m.versions = read_versions(r, m.config, m.files.size());
  m.version_tree_nodes = read_version_nodes(r, m.config, m.files.size());
  r.expect_end("manifest");
  return m;
}

BtreeNode decode_btree_node(std::string_view encoded,
                            const std::string& base_path,
                            uint64_t max_decoded_bytes) {
  const std::string body = decode_frame(
      encoded, kBtreeNodeMagic, std::min(max_decoded_bytes, kMaxDecodedBytes));
  ByteReader r(body);
  BtreeNode node;
  node.height = r.u8();
  node.files = read_data_file_table(r, base_path);
  const uint64_t n = r.varint("num_entries", kMaxNodeArity);
  if (n == 0) throw Damaged("an empty B+tree node");
  check_count(r, n, 2, "entry");  // a key suffix length and a value length
  std::vector<std::string> keys;
  std::vector<uint64_t> scp;
  read_keys(r, n, node.height > 0, body.size(), keys, scp);
  if (node.height == 0) {
    node.leaves.resize(n);
    for (size_t i = 0; i < n; ++i) node.leaves[i].key = std::move(keys[i]);
    read_leaf_values(r, node);
  } else {
    node.children.resize(n);
    for (size_t i = 0; i < n; ++i) {
      node.children[i].key = std::move(keys[i]);
      node.children[i].subtree_common_prefix_length = scp[i];
    }
    read_children(r, node);
  }
  r.expect_end("B+tree node");
  return node;
}

}  // namespace ckpt::pytree::ocdbt
