// The encoded structures of TensorStore's OCDBT key-value store format
// (TensorStore's kvstore/ocdbt/index.rst), decoded from bytes already in
// memory: manifests and B+tree nodes, with the framing they share (magic,
// length, version, optional zstd compression, CRC-32C). Version tree nodes
// are not decoded: a reader of the latest version needs only the manifest,
// which always holds the newest generations itself.
//
// Every decoder checks every count, length and offset against the bytes it
// has and the format's limits before using it, and throws Damaged, whose
// text says what is wrong; callers add the file's name.
#ifndef CKPT_PLUGINS_PYTREE_ORBAX_OCDBT_FORMAT_H_
#define CKPT_PLUGINS_PYTREE_ORBAX_OCDBT_FORMAT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "records/format_errors.h"

namespace ckpt::pytree::ocdbt {

constexpr uint32_t kManifestMagic = 0x0cdb3a2a;
constexpr uint32_t kVersionTreeNodeMagic = 0x0cdb1234;
constexpr uint32_t kBtreeNodeMagic = 0x0cdb20de;
// The format limits TensorStore's writer keeps to.
constexpr size_t kMaxKeyLength = 65535;
constexpr size_t kMaxPathLength = 65535;
constexpr size_t kMaxNodeArity = size_t{1} << 20;
constexpr uint64_t kMaxInlineValueLength = uint64_t{1} << 20;
constexpr uint8_t kMaxVersionTreeArityLog2 = 16;
// Limits of this reader: the decoded size of one manifest or node, and the
// bytes of a node's keys (keys share prefixes, so they may add up to far
// more than the node's size: at most kKeyBytesPerNodeByte times it, plus
// 1 MiB).
constexpr uint64_t kMaxDecodedBytes = uint64_t{1} << 30;
constexpr uint64_t kKeyBytesPerNodeByte = 64;

// One file of the database: base_path + relative_path, a path relative to
// the database's folder.
struct DataFile {
  std::string base_path;
  std::string relative_path;
  std::string path() const { return base_path + relative_path; }
};

// A byte range of a data file (an index into the data file table of the
// structure it was read from). Missing: both offset and length are
// UINT64_MAX (a generation without keys).
struct DataRef {
  uint32_t file = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
  bool missing() const { return offset == UINT64_MAX && length == UINT64_MAX; }
};

struct Config {
  unsigned char uuid[16] = {};
  uint8_t manifest_kind = 0;  // 0 single, 1 numbered
  uint32_t max_inline_value_bytes = 0;
  uint32_t max_decoded_node_bytes = 0;
  uint8_t version_tree_arity_log2 = 0;
  uint32_t compression = 0;  // 0 none, 1 zstd
  int32_t zstd_level = 0;
};

// One generation of the database: the root of its B+tree.
struct Version {
  uint64_t generation = 0;
  uint8_t root_height = 0;
  DataRef root;
  uint64_t num_keys = 0;
  uint64_t num_tree_bytes = 0;
  uint64_t num_indirect_value_bytes = 0;
  uint64_t commit_time = 0;  // nanoseconds since the Unix epoch
};

struct Manifest {
  Config config;
  std::vector<DataFile> files;
  // The newest generations, oldest first (empty for a numbered manifest's
  // manifest.ocdbt, which holds only the configuration).
  std::vector<Version> versions;
  // How many version tree nodes hold older generations (not read).
  size_t version_tree_nodes = 0;
};

struct LeafEntry {
  std::string key;  // relative to the node's subtree prefix
  bool is_inline = true;
  std::string value;  // when inline
  DataRef ref;        // when not
};

struct InteriorEntry {
  std::string key;  // the child's smallest key, relative like a leaf's
  // How many bytes of `key` every key of the child's subtree starts with:
  // the child's own keys are relative to it.
  size_t subtree_common_prefix_length = 0;
  DataRef child;
  uint64_t num_keys = 0;
  uint64_t num_tree_bytes = 0;
  uint64_t num_indirect_value_bytes = 0;
};

struct BtreeNode {
  uint8_t height = 0;  // 0: a leaf node
  std::vector<DataFile> files;
  std::vector<LeafEntry> leaves;        // height 0, keys increasing
  std::vector<InteriorEntry> children;  // height > 0, keys increasing
};

// Decodes manifest.ocdbt (or a numbered manifest.<generation>).
Manifest decode_manifest(std::string_view encoded);

// Decodes a B+tree node read from a data file of base path `base_path` (its
// own data file table is relative to it). Its body may decode to at most
// `max_decoded_bytes` (at most kMaxDecodedBytes).
BtreeNode decode_btree_node(std::string_view encoded,
                            const std::string& base_path,
                            uint64_t max_decoded_bytes);

// Checks and removes the framing every encoded structure has: magic
// `magic` (big-endian), the total length (little-endian u64), a CRC-32C of
// everything before it in the last 4 bytes, format version 0 and
// compression 0 (none) or 1 (zstd). Returns the body, decoded to at most
// `max_decoded_bytes`.
std::string decode_frame(std::string_view encoded, uint32_t magic,
                         uint64_t max_decoded_bytes);

// Reads the encoding's primitives from a byte range, each bounds-checked:
// running past the end is Damaged("... ends early").
class ByteReader {
 public:
  explicit ByteReader(std::string_view bytes) : bytes_(bytes) {}
  uint8_t u8();
  uint32_t u32_le();
  uint64_t u64_le();
  uint32_t u32_be();
  // LEB128, at most 10 bytes; at most `max` (else Damaged naming `field`).
  uint64_t varint(const char* field, uint64_t max = UINT64_MAX);
  std::string_view bytes(uint64_t n);
  size_t remaining() const { return bytes_.size() - pos_; }
  size_t position() const { return pos_; }
  // Damaged unless every byte was read.
  void expect_end(const char* what) const;

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

}  // namespace ckpt::pytree::ocdbt

#endif  // CKPT_PLUGINS_PYTREE_ORBAX_OCDBT_FORMAT_H_
