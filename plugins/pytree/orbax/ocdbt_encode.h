// The encoder of TensorStore's OCDBT structures, the inverse of
// ocdbt_format.h's decoders: manifests and B+tree nodes with their framing
// (magic, length, version 0, optional zstd, CRC-32C), as TensorStore's own
// writer lays them out (sorted data file tables with shared prefixes,
// column-wise entries).
#ifndef CKPT_PLUGINS_PYTREE_ORBAX_OCDBT_ENCODE_H_
#define CKPT_PLUGINS_PYTREE_ORBAX_OCDBT_ENCODE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "orbax/ocdbt_format.h"

namespace ckpt::pytree::ocdbt {

// How many leading bytes `a` and `b` share (keys and paths are stored as
// the suffix after what they share with the previous one).
size_t common_prefix(std::string_view a, std::string_view b);

// LEB128, appended to `out`.
void put_varint(std::string& out, uint64_t v);
void put_u32_le(std::string& out, uint32_t v);
void put_u64_le(std::string& out, uint64_t v);

// Frames `body`: magic (big-endian), total length, version 0, compression
// (zstd at its default level when `compress`), CRC-32C.
std::string encode_frame(uint32_t magic, std::string_view body, bool compress);

// `node` stored in a data file whose base path is `base_path`: every file
// of its table must lie under it. Leaf entries and children must be in
// increasing key order, keys relative to the node's subtree prefix, and
// every data reference must name a file of node.files. Throws
// std::logic_error when they are not (a bug of the caller, not of data).
std::string encode_btree_node(const BtreeNode& node,
                              const std::string& base_path, bool compress);

// A single-file manifest (config.manifest_kind 0) of m.versions (at most
// 2^arity of one version tree leaf) and no version tree nodes.
std::string encode_manifest(const Manifest& m);

}  // namespace ckpt::pytree::ocdbt

#endif  // CKPT_PLUGINS_PYTREE_ORBAX_OCDBT_ENCODE_H_
