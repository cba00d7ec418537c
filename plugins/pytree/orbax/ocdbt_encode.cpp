#include "orbax/ocdbt_encode.h"

#include <zstd.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "orbax/crc32c.h"

namespace ckpt::pytree::ocdbt {

namespace {

// The data file table of `files` as stored in a file of base path
// `transitive`: sorted by (base path, relative path), each path stored as
// the suffix after what it shares with the previous one (reaching into the
// relative path only when the base paths are equal). `index[i]` is where
// files[i] landed.
std::string encode_table(const std::vector<DataFile>& files,
                         const std::string& transitive,
                         std::vector<size_t>& index) {
  struct Stored {
    std::string base, relative;
    size_t original;
  };
  std::vector<Stored> stored;
  for (size_t i = 0; i < files.size(); ++i) {
    if (files[i].base_path.compare(0, transitive.size(), transitive) != 0) {
      throw std::logic_error("data file " + files[i].path() + " is not under " +
                             transitive);
    }
    stored.push_back({files[i].base_path.substr(transitive.size()),
                      files[i].relative_path, i});
  }
  std::sort(stored.begin(), stored.end(), [](const Stored& a, const Stored& b) {
    return a.base != b.base ? a.base < b.base : a.relative < b.relative;
  });
  index.assign(files.size(), 0);
  for (size_t i = 0; i < stored.size(); ++i) index[stored[i].original] = i;
  std::vector<size_t> prefix(stored.size(), 0);
  for (size_t i = 1; i < stored.size(); ++i) {
    const Stored& prev = stored[i - 1];
    const Stored& cur = stored[i];
    prefix[i] = common_prefix(prev.base, cur.base);
    if (prev.base == cur.base)
      prefix[i] += common_prefix(prev.relative, cur.relative);
  }
  std::string out;
  put_varint(out, stored.size());
  for (size_t i = 1; i < stored.size(); ++i) put_varint(out, prefix[i]);
  for (size_t i = 0; i < stored.size(); ++i) {
    put_varint(out,
               stored[i].base.size() + stored[i].relative.size() - prefix[i]);
  }
  for (const Stored& s : stored) put_varint(out, s.base.size());
  for (size_t i = 0; i < stored.size(); ++i) {
    out += (stored[i].base + stored[i].relative).substr(prefix[i]);
  }
  return out;
}

void encode_keys(const std::vector<std::string_view>& keys,
                 const std::vector<size_t>* scp, std::string& out) {
  std::vector<size_t> prefix(keys.size(), 0);
  for (size_t i = 1; i < keys.size(); ++i) {
    if (!(keys[i - 1] < keys[i]))
      throw std::logic_error("B+tree keys out of order");
    prefix[i] = common_prefix(keys[i - 1], keys[i]);
    put_varint(out, prefix[i]);
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    put_varint(out, keys[i].size() - prefix[i]);
  }
  if (scp) {
    for (size_t v : *scp) put_varint(out, v);
  }
  for (size_t i = 0; i < keys.size(); ++i) out += keys[i].substr(prefix[i]);
}

uint32_t checked_file(uint32_t file, size_t count) {
  if (file >= count) throw std::logic_error("a reference to no data file");
  return file;
}

}  // namespace

size_t common_prefix(std::string_view a, std::string_view b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

void put_varint(std::string& out, uint64_t v) {
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    if (v) b |= 0x80;
    out += static_cast<char>(b);
  } while (v);
}

void put_u32_le(std::string& out, uint32_t v) {
  for (int k = 0; k < 4; ++k) out += static_cast<char>((v >> (8 * k)) & 0xff);
}

void put_u64_le(std::string& out, uint64_t v) {
  for (int k = 0; k < 8; ++k) out += static_cast<char>((v >> (8 * k)) & 0xff);
}

std::string encode_frame(uint32_t magic, std::string_view body, bool compress) {
  std::string out;
  for (int k = 3; k >= 0; --k)
    out += static_cast<char>((magic >> (8 * k)) & 0xff);
  out += std::string(8, '\0');  // the length, below
  put_varint(out, 0);           // format version
  put_varint(out, compress ? 1 : 0);
  if (compress) {
    const size_t at = out.size();
    out.resize(at + ZSTD_compressBound(body.size()));
    const size_t n = ZSTD_compress(out.data() + at, out.size() - at,
                                   body.data(), body.size(), 0);
    if (ZSTD_isError(n)) {
      throw std::runtime_error(std::string("zstd: ") + ZSTD_getErrorName(n));
    }
    out.resize(at + n);
  } else {
    out += body;
  }
  const uint64_t length = out.size() + 4;
  for (int k = 0; k < 8; ++k)
    out[4 + k] = static_cast<char>((length >> (8 * k)) & 0xff);
  put_u32_le(out, crc32c(out.data(), out.size()));
  return out;
}

std::string encode_btree_node(const BtreeNode& node,
                              const std::string& base_path, bool compress) {
  std::vector<size_t> index;
  std::string body(1, static_cast<char>(node.height));
  body += encode_table(node.files, base_path, index);
  const size_t files = node.files.size();
  std::vector<std::string_view> keys;
  if (node.height == 0) {
    put_varint(body, node.leaves.size());
    for (const LeafEntry& e : node.leaves) keys.push_back(e.key);
    encode_keys(keys, nullptr, body);
    for (const LeafEntry& e : node.leaves) {
      put_varint(body, e.is_inline ? e.value.size() : e.ref.length);
    }
    for (const LeafEntry& e : node.leaves) body += e.is_inline ? '\0' : '\1';
    for (const LeafEntry& e : node.leaves) {
      if (!e.is_inline)
        put_varint(body, index[checked_file(e.ref.file, files)]);
    }
    for (const LeafEntry& e : node.leaves) {
      if (!e.is_inline) put_varint(body, e.ref.offset);
    }
    for (const LeafEntry& e : node.leaves) {
      if (e.is_inline) body += e.value;
    }
  } else {
    put_varint(body, node.children.size());
    std::vector<size_t> scp;
    for (const InteriorEntry& c : node.children) {
      keys.push_back(c.key);
      scp.push_back(c.subtree_common_prefix_length);
    }
    encode_keys(keys, &scp, body);
    for (const InteriorEntry& c : node.children) {
      put_varint(body, index[checked_file(c.child.file, files)]);
    }
    for (const InteriorEntry& c : node.children)
      put_varint(body, c.child.offset);
    for (const InteriorEntry& c : node.children)
      put_varint(body, c.child.length);
    for (const InteriorEntry& c : node.children) put_varint(body, c.num_keys);
    for (const InteriorEntry& c : node.children) {
      put_varint(body, c.num_tree_bytes);
    }
    for (const InteriorEntry& c : node.children) {
      put_varint(body, c.num_indirect_value_bytes);
    }
  }
  return encode_frame(kBtreeNodeMagic, body, compress);
}

std::string encode_manifest(const Manifest& m) {
  const Config& c = m.config;
  std::string body(reinterpret_cast<const char*>(c.uuid), 16);
  body += static_cast<char>(c.manifest_kind);
  put_varint(body, c.max_inline_value_bytes);
  put_varint(body, c.max_decoded_node_bytes);
  body += static_cast<char>(c.version_tree_arity_log2);
  put_varint(body, c.compression);
  if (c.compression == 1) put_u32_le(body, static_cast<uint32_t>(c.zstd_level));
  std::vector<size_t> index;
  body += encode_table(m.files, "", index);
  put_varint(body, m.versions.size());
  const size_t files = m.files.size();
  for (const Version& v : m.versions) put_varint(body, v.generation);
  for (const Version& v : m.versions) body += static_cast<char>(v.root_height);
  for (const Version& v : m.versions) {
    put_varint(body, index[checked_file(v.root.file, files)]);
  }
  for (const Version& v : m.versions) put_varint(body, v.root.offset);
  for (const Version& v : m.versions) put_varint(body, v.root.length);
  for (const Version& v : m.versions) put_varint(body, v.num_keys);
  for (const Version& v : m.versions) put_varint(body, v.num_tree_bytes);
  for (const Version& v : m.versions) {
    put_varint(body, v.num_indirect_value_bytes);
  }
  for (const Version& v : m.versions) put_u64_le(body, v.commit_time);
  put_varint(body, 0);  // no version tree nodes
  return encode_frame(kManifestMagic, body, c.compression == 1);
}

}  // namespace ckpt::pytree::ocdbt
