#include "plugins/pytree/orbax/orbax_writer.h"

#include <ckpt/sdk/dtype.h>
#include <zstd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>

#include "orbax/crc32c.h"
#include "orbax/ocdbt_encode.h"
#include "tree/cast.h"
#include "tree/dtypes.h"

namespace ckpt::test::orbax {

namespace {

using json = nlohmann::json;

constexpr uint32_t kManifestMagic = 0x0cdb3a2a;
constexpr uint32_t kBtreeNodeMagic = 0x0cdb20de;

using ckpt::pytree::ocdbt::put_u32_le;
using ckpt::pytree::ocdbt::put_u64_le;

void write_file(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string zstd(const std::string& bytes) {
  std::string out(ZSTD_compressBound(bytes.size()), '\0');
  const size_t n =
      ZSTD_compress(out.data(), out.size(), bytes.data(), bytes.size(), 3);
  if (ZSTD_isError(n)) throw std::runtime_error("zstd failed");
  out.resize(n);
  return out;
}

size_t common_prefix(const std::string& a, const std::string& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

// A data file as a table names it: relative to the table's own base path.
struct FileId {
  std::string base, relative;
  bool operator<(const FileId& o) const {
    return base != o.base ? base < o.base : relative < o.relative;
  }
  bool operator==(const FileId& o) const {
    return base == o.base && relative == o.relative;
  }
};

// A data file table: the files sorted, each path stored as the suffix
// after the prefix it shares with the previous one (TensorStore's rule:
// the prefix reaches into the relative path only when the base paths are
// equal).
struct Table {
  std::vector<FileId> files;
  size_t add(const FileId& f) {
    auto it = std::find(files.begin(), files.end(), f);
    if (it != files.end()) return static_cast<size_t>(it - files.begin());
    files.push_back(f);
    return files.size() - 1;
  }
  // Sorted, with `index` mapping old positions to new.
  std::string encode(std::vector<size_t>& index) const {
    std::vector<size_t> order(files.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return files[a] < files[b]; });
    index.assign(files.size(), 0);
    for (size_t i = 0; i < order.size(); ++i) index[order[i]] = i;
    std::string out = varint(files.size());
    std::vector<size_t> prefix(order.size(), 0);
    for (size_t i = 1; i < order.size(); ++i) {
      const FileId& prev = files[order[i - 1]];
      const FileId& cur = files[order[i]];
      size_t p = common_prefix(prev.base, cur.base);
      if (prev.base == cur.base)
        p += common_prefix(prev.relative, cur.relative);
      prefix[i] = p;
      out += varint(p);
    }
    for (size_t i = 0; i < order.size(); ++i) {
      const FileId& f = files[order[i]];
      out += varint(f.base.size() + f.relative.size() - prefix[i]);
    }
    for (size_t i : order) out += varint(files[i].base.size());
    for (size_t i = 0; i < order.size(); ++i) {
      const FileId& f = files[order[i]];
      out += (f.base + f.relative).substr(prefix[i]);
    }
    return out;
  }
};

// Where a value is, for the B+tree that refers to it: inline bytes, or a
// range of a data file named by its path relative to the database folder.
struct Value {
  bool is_inline = true;
  std::string bytes;
  std::string file;
  uint64_t offset = 0, length = 0;
};

// Splits `path` (relative to the database folder) into the base path and
// relative path a table under `transitive` stores: the directory part
// beyond `transitive` becomes the base path.
FileId file_id(const std::string& path, const std::string& transitive) {
  if (path.rfind(transitive, 0) != 0) {
    throw std::logic_error(path + " is not under " + transitive);
  }
  const std::string rest = path.substr(transitive.size());
  const size_t slash = rest.rfind("d/");
  return {rest.substr(0, slash), rest.substr(slash)};
}

std::string encode_keys(const std::vector<std::string>& keys,
                        const std::vector<size_t>* scp) {
  std::string out;
  for (size_t i = 1; i < keys.size(); ++i) {
    out += varint(common_prefix(keys[i - 1], keys[i]));
  }
  std::vector<size_t> prefix(keys.size(), 0);
  for (size_t i = 1; i < keys.size(); ++i) {
    prefix[i] = common_prefix(keys[i - 1], keys[i]);
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    out += varint(keys[i].size() - prefix[i]);
  }
  if (scp) {
    for (size_t v : *scp) out += varint(v);
  }
  for (size_t i = 0; i < keys.size(); ++i) out += keys[i].substr(prefix[i]);
  return out;
}

// A leaf node of `entries` (keys relative to its subtree, sorted), stored
// in a file whose base path is `transitive`.
std::string leaf_node(const std::vector<std::pair<std::string, Value>>& entries,
                      const std::string& transitive, bool compress) {
  Table table;
  std::vector<size_t> file_of(entries.size(), 0);
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!entries[i].second.is_inline) {
      file_of[i] = table.add(file_id(entries[i].second.file, transitive));
    }
  }
  std::vector<size_t> index;
  std::string body(1, '\0');  // height 0
  body += table.encode(index);
  body += varint(entries.size());
  std::vector<std::string> keys;
  for (const auto& e : entries) keys.push_back(e.first);
  body += encode_keys(keys, nullptr);
  for (const auto& e : entries) {
    body +=
        varint(e.second.is_inline ? e.second.bytes.size() : e.second.length);
  }
  for (const auto& e : entries) body += e.second.is_inline ? '\0' : '\1';
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!entries[i].second.is_inline) body += varint(index[file_of[i]]);
  }
  for (const auto& e : entries) {
    if (!e.second.is_inline) body += varint(e.second.offset);
  }
  for (const auto& e : entries) {
    if (e.second.is_inline) body += e.second.bytes;
  }
  return frame(kBtreeNodeMagic, body, compress);
}

struct Child {
  std::string key;  // relative to the interior node's subtree
  size_t scp = 0;
  std::string file;  // relative to the database folder
  uint64_t offset = 0, length = 0;
  uint64_t num_keys = 0;
};

std::string interior_node(const std::vector<Child>& children, bool compress) {
  Table table;
  std::vector<size_t> file_of;
  for (const Child& c : children)
    file_of.push_back(table.add(file_id(c.file, "")));
  std::vector<size_t> index;
  std::string body(1, '\1');  // height 1
  body += table.encode(index);
  body += varint(children.size());
  std::vector<std::string> keys;
  std::vector<size_t> scp;
  for (const Child& c : children) {
    keys.push_back(c.key);
    scp.push_back(c.scp);
  }
  body += encode_keys(keys, &scp);
  for (size_t i = 0; i < children.size(); ++i)
    body += varint(index[file_of[i]]);
  for (const Child& c : children) body += varint(c.offset);
  for (const Child& c : children) body += varint(c.length);
  for (const Child& c : children) body += varint(c.num_keys);
  for (const Child& c : children) body += varint(c.length);  // tree bytes
  for (size_t i = 0; i < children.size(); ++i) body += varint(0);
  return frame(kBtreeNodeMagic, body, compress);
}

std::string config(uint8_t kind, const Options& o, bool compress) {
  std::string c;
  for (int k = 0; k < 16; ++k) c += static_cast<char>(0x40 + k);  // uuid
  c += static_cast<char>(kind);
  c += varint(o.max_inline_value_bytes);
  c += varint(100000000);  // max_decoded_node_bytes
  c += '\4';               // version_tree_arity_log2
  c += varint(compress ? 1 : 0);
  if (compress) put_u32_le(c, 0);  // zstd level
  return c;
}

// A manifest of one generation whose root (height `height`) is at
// `file` (relative to the database folder) [offset, +length).
std::string manifest(const Options& o, uint8_t height, const std::string& file,
                     uint64_t offset, uint64_t length, uint64_t num_keys) {
  std::string body = config(0, o, o.compress_nodes);
  Table table;
  table.add(file_id(file, ""));
  std::vector<size_t> index;
  body += table.encode(index);
  body += varint(1);  // one generation
  body += varint(1);  // generation number
  body += static_cast<char>(height);
  body += varint(0);  // its root's data file
  body += varint(offset);
  body += varint(length);
  body += varint(num_keys);
  body += varint(length);
  body += varint(0);
  put_u64_le(body, 1700000000000000000ull);  // commit time
  body += varint(0);                         // no version tree nodes
  return frame(kManifestMagic, body, o.compress_nodes);
}

std::string hex_name(size_t n) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%032zx", n);
  return buf;
}

std::string repr(const std::vector<std::string>& path) {
  std::string s = "(";
  for (size_t i = 0; i < path.size(); ++i) {
    s += (i ? ", '" : "'") + path[i] + "'";
  }
  return s + (path.size() == 1 ? ",)" : ")");
}

std::string param_name(const std::vector<std::string>& path) {
  std::string s;
  for (size_t i = 0; i < path.size(); ++i) s += (i ? "." : "") + path[i];
  return s;
}

// Copies the elements of `box` (offset, shape) of the C-order array
// `shape` at `src`, padded with `fill` outside it.
std::string extract(const std::string& src, const std::vector<int64_t>& shape,
                    const std::vector<int64_t>& offset,
                    const std::vector<int64_t>& box, const std::string& fill) {
  const size_t item = fill.size();
  const uint64_t n = ckpt::pytree::element_count(box);
  std::string out;
  out.reserve(n * item);
  std::vector<int64_t> at(box.size(), 0);
  for (uint64_t e = 0; e < n; ++e) {
    bool inside = true;
    uint64_t linear = 0;
    for (size_t d = 0; d < box.size(); ++d) {
      const int64_t g = offset[d] + at[d];
      inside = inside && g < shape[d];
      linear = linear * static_cast<uint64_t>(shape[d]) +
               static_cast<uint64_t>(std::min<int64_t>(g, shape[d] - 1));
    }
    out += inside ? src.substr(linear * item, item) : fill;
    for (size_t d = box.size(); d-- > 0;) {
      if (++at[d] < box[d]) break;
      at[d] = 0;
    }
  }
  return out;
}

bool all_fill(const std::string& bytes, const std::string& fill) {
  for (size_t i = 0; i < bytes.size(); i += fill.size()) {
    if (bytes.compare(i, fill.size(), fill) != 0) return false;
  }
  return true;
}

std::string to_stored_order(std::string bytes, const Leaf& leaf) {
  if (!leaf.big_endian) return bytes;
  size_t swap = ckpt::sdk::dtype_size(leaf.dtype);
  if (leaf.dtype == CKPT_DTYPE_COMPLEX64 || leaf.dtype == CKPT_DTYPE_COMPLEX128)
    swap /= 2;
  for (size_t i = 0; i + swap <= bytes.size(); i += swap) {
    std::reverse(bytes.begin() + static_cast<long>(i),
                 bytes.begin() + static_cast<long>(i + swap));
  }
  return bytes;
}

std::string encode_plain(const std::string& bytes, const Leaf& leaf) {
  std::string out = to_stored_order(bytes, leaf);
  return leaf.compress ? zstd(out) : out;
}

std::string fill_bytes(const Leaf& leaf) {
  if (!leaf.fill_bytes.empty()) return leaf.fill_bytes;
  return std::string(ckpt::sdk::dtype_size(leaf.dtype), '\0');
}

std::string fill_json(const Leaf& leaf) {
  if (leaf.fill_value_json != "0") return leaf.fill_value_json;
  if (leaf.dtype == CKPT_DTYPE_BOOL) return "false";
  if (leaf.dtype == CKPT_DTYPE_COMPLEX64 || leaf.dtype == CKPT_DTYPE_COMPLEX128)
    return "[0.0, 0.0]";
  return "0";
}

json codecs_json(const Leaf& leaf, const std::vector<int64_t>& inner) {
  json bytes = {
      {"name", "bytes"},
      {"configuration", {{"endian", leaf.big_endian ? "big" : "little"}}}};
  json chain = json::array({bytes});
  if (leaf.compress) {
    chain.push_back({{"name", "zstd"},
                     {"configuration", {{"level", 3}, {"checksum", false}}}});
  }
  if (!leaf.sharded) return chain;
  return json::array(
      {{{"name", "sharding_indexed"},
        {"configuration",
         {{"chunk_shape", inner},
          {"codecs", chain},
          {"index_codecs",
           json::array(
               {{{"name", "bytes"}, {"configuration", {{"endian", "little"}}}},
                {{"name", "crc32c"}}})},
          {"index_location", "end"}}}}});
}

// NumPy's type string of a dtype in zarr v2's .zarray.
std::string v2_dtype(const Leaf& leaf) {
  if (leaf.dtype == CKPT_DTYPE_BFLOAT16) return "bfloat16";
  const size_t size = ckpt::sdk::dtype_size(leaf.dtype);
  const std::string name = ckpt::pytree::dtype_name(leaf.dtype);
  const char kind = name == "bool"                ? 'b'
                    : name.rfind("uint", 0) == 0  ? 'u'
                    : name.rfind("int", 0) == 0   ? 'i'
                    : name.rfind("float", 0) == 0 ? 'f'
                                                  : 'c';
  const char order = size == 1 ? '|' : leaf.big_endian ? '>' : '<';
  return std::string(1, order) + kind + std::to_string(size);
}

// The stored values of one array: zarr.json (or .zarray) and its chunks,
// by key relative to the array.
std::map<std::string, std::string> array_values(const Leaf& leaf,
                                                bool skip_fill, bool zarr2) {
  const std::vector<int64_t> chunk =
      leaf.chunk_shape.empty() ? leaf.shape : leaf.chunk_shape;
  const std::vector<int64_t> inner =
      leaf.inner_chunk_shape.empty() ? chunk : leaf.inner_chunk_shape;
  std::map<std::string, std::string> out;
  if (zarr2) {
    const json meta = {
        {"zarr_format", 2},
        {"shape", leaf.shape},
        {"chunks", chunk},
        {"dtype", v2_dtype(leaf)},
        {"compressor",
         leaf.compress ? json{{"id", "zstd"}, {"level", 1}} : json(nullptr)},
        {"fill_value", json::parse(fill_json(leaf))},
        {"filters", nullptr},
        {"order", "C"},
        {"dimension_separator", std::string(1, leaf.separator)}};
    out[".zarray"] = meta.dump();
  } else {
    const json meta = {
        {"zarr_format", 3},
        {"node_type", "array"},
        {"shape", leaf.shape},
        {"data_type", ckpt::pytree::dtype_name(leaf.dtype)},
        {"chunk_grid",
         {{"name", "regular"}, {"configuration", {{"chunk_shape", chunk}}}}},
        {"chunk_key_encoding", {{"name", "default"}}},
        {"fill_value", json::parse(fill_json(leaf))},
        {"codecs", codecs_json(leaf, inner)}};
    out["zarr.json"] = meta.dump();
  }
  const std::string fill = fill_bytes(leaf);
  const size_t rank = leaf.shape.size();
  std::vector<int64_t> grid(rank);
  for (size_t d = 0; d < rank; ++d) {
    grid[d] = (leaf.shape[d] + chunk[d] - 1) / chunk[d];
  }
  if (ckpt::pytree::element_count(leaf.shape) == 0) return out;
  std::vector<int64_t> at(rank, 0);
  for (uint64_t c = 0; c < ckpt::pytree::element_count(grid); ++c) {
    std::vector<int64_t> offset(rank);
    std::string key = zarr2 ? "" : "c";
    for (size_t d = 0; d < rank; ++d) {
      offset[d] = at[d] * chunk[d];
      if (d > 0 || !zarr2) key += zarr2 ? leaf.separator : '/';
      key += std::to_string(at[d]);
    }
    if (zarr2 && rank == 0) key = "0";
    const std::string shard =
        extract(leaf.bytes, leaf.shape, offset, chunk, fill);
    if (!(skip_fill && all_fill(shard, fill))) {
      if (!leaf.sharded || zarr2) {
        out[key] = encode_plain(shard, leaf);
      } else {
        std::vector<int64_t> inner_grid(rank);
        for (size_t d = 0; d < rank; ++d) inner_grid[d] = chunk[d] / inner[d];
        std::string data, index;
        std::vector<int64_t> in_at(rank, 0);
        for (uint64_t k = 0; k < ckpt::pytree::element_count(inner_grid); ++k) {
          std::vector<int64_t> in_offset(rank);
          for (size_t d = 0; d < rank; ++d) in_offset[d] = in_at[d] * inner[d];
          const std::string part =
              extract(shard, chunk, in_offset, inner, fill);
          if (skip_fill && all_fill(part, fill)) {
            put_u64_le(index, UINT64_MAX);
            put_u64_le(index, UINT64_MAX);
          } else {
            const std::string encoded = encode_plain(part, leaf);
            put_u64_le(index, data.size());
            put_u64_le(index, encoded.size());
            data += encoded;
          }
          for (size_t d = rank; d-- > 0;) {
            if (++in_at[d] < inner_grid[d]) break;
            in_at[d] = 0;
          }
        }
        put_u32_le(index, ckpt::pytree::crc32c(index.data(), index.size()));
        out[key] = data + index;
      }
    }
    for (size_t d = rank; d-- > 0;) {
      if (++at[d] < grid[d]) break;
      at[d] = 0;
    }
  }
  return out;
}

json tree_metadata(const std::vector<Leaf>& leaves, bool every_chunk,
                   bool zarr3) {
  json tree = json::object();
  for (const Leaf& leaf : leaves) {
    json keys = json::array();
    for (const std::string& k : leaf.path) {
      keys.push_back({{"key", k}, {"key_type", 2}});
    }
    json value = {{"value_type", leaf.value_type}, {"skip_deserialize", false}};
    if (leaf.value_type != "string") value["write_shape"] = leaf.shape;
    tree[repr(leaf.path)] = {{"key_metadata", keys}, {"value_metadata", value}};
  }
  return {{"tree_metadata", tree},
          {"use_ocdbt", true},
          {"use_zarr3", zarr3},
          {"store_array_data_equal_to_fill_value", every_chunk},
          {"custom_metadata", nullptr}};
}

}  // namespace

std::string varint(uint64_t v) {
  std::string out;
  ckpt::pytree::ocdbt::put_varint(out, v);
  return out;
}

std::string frame(uint32_t magic, const std::string& body, bool compress) {
  return ckpt::pytree::ocdbt::encode_frame(magic, body, compress);
}

Written write_pytree(const fs::path& folder, const std::vector<Leaf>& leaves,
                     const Options& o) {
  Written written;
  fs::create_directories(folder);
  write_file(folder / "_METADATA",
             tree_metadata(leaves, !o.skip_fill_chunks, !o.zarr2).dump());
  json strings = json::object();
  size_t next_name = 1;
  // Each process's values: its sub-database's data file and leaf node.
  std::map<std::string, Value> root_entries;  // full key -> value
  for (int p = 0; p < o.processes; ++p) {
    const std::string sub = "ocdbt.process_" + std::to_string(p) + "/";
    const std::string value_file = "d/" + hex_name(next_name++);
    std::string value_data;
    std::vector<std::pair<std::string, Value>> entries;
    for (const Leaf& leaf : leaves) {
      if (leaf.process != p) continue;
      if (leaf.value_type == "string") {
        strings[param_name(leaf.path)] = leaf.text;
        continue;
      }
      for (auto& [key, bytes] :
           array_values(leaf, o.skip_fill_chunks, o.zarr2)) {
        Value v;
        if (bytes.size() <= o.max_inline_value_bytes) {
          v.bytes = bytes;
        } else {
          v.is_inline = false;
          v.file = value_file;
          v.offset = value_data.size();
          v.length = bytes.size();
          value_data += bytes;
        }
        entries.emplace_back(param_name(leaf.path) + "/" + key, v);
      }
    }
    std::sort(entries.begin(), entries.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    if (!value_data.empty()) {
      write_file(folder / (sub + value_file), value_data);
      written.value_files.push_back(sub + value_file);
    }
    const std::string node = leaf_node(entries, "", o.compress_nodes);
    const std::string node_file = "d/" + hex_name(next_name++);
    write_file(folder / (sub + node_file), node);
    written.node_files.push_back(sub + node_file);
    write_file(folder / (sub + "manifest.ocdbt"),
               manifest(o, 0, node_file, 0, node.size(), entries.size()));
    written.manifests.push_back(sub + "manifest.ocdbt");
    for (auto& [key, v] : entries) {
      Value root = v;
      if (!v.is_inline) root.file = sub + v.file;
      root_entries[key] = root;
    }
  }
  if (!strings.empty()) write_file(folder / "_strings.json", strings.dump());

  // The root database over them all.
  std::vector<std::pair<std::string, Value>> all(root_entries.begin(),
                                                 root_entries.end());
  std::string root_file, root_node;
  uint8_t height = 0;
  if (o.root_height == 0 || all.empty()) {
    root_node = leaf_node(all, "", o.compress_nodes);
    root_file = "d/" + hex_name(next_name++);
  } else {
    // Leaf nodes of consecutive keys, each with its keys relative to their
    // common prefix; a node whose values are all in one process's files is
    // stored among that process's files (its data file table is then
    // relative to that folder).
    std::vector<Child> children;
    std::map<std::string, std::string> files;  // path -> content
    for (size_t start = 0; start < all.size(); start += o.keys_per_leaf) {
      const size_t end = std::min(all.size(), start + o.keys_per_leaf);
      size_t scp = all[start].first.size();
      for (size_t i = start + 1; i < end; ++i) {
        scp = std::min(scp, common_prefix(all[start].first, all[i].first));
      }
      std::string owner;  // the one process folder of its values, if any
      bool one_owner = true;
      for (size_t i = start; i < end; ++i) {
        if (all[i].second.is_inline) continue;
        const std::string dir =
            all[i].second.file.substr(0, all[i].second.file.find('/') + 1);
        if (owner.empty()) owner = dir;
        one_owner = one_owner && owner == dir;
      }
      if (!one_owner) owner.clear();
      std::vector<std::pair<std::string, Value>> part;
      for (size_t i = start; i < end; ++i) {
        part.emplace_back(all[i].first.substr(scp), all[i].second);
      }
      const std::string node = leaf_node(part, owner, o.compress_nodes);
      const std::string file = owner + "d/" + hex_name(next_name++);
      files[file] = node;
      children.push_back(
          {all[start].first, scp, file, 0, node.size(), end - start});
    }
    for (const auto& [file, bytes] : files) {
      write_file(folder / file, bytes);
      written.node_files.push_back(file);
    }
    root_node = interior_node(children, o.compress_nodes);
    root_file = "d/" + hex_name(next_name++);
    height = 1;
  }
  write_file(folder / root_file, root_node);
  written.node_files.push_back(root_file);
  const std::string root_manifest =
      manifest(o, height, root_file, 0, root_node.size(), all.size());
  if (o.numbered_manifest) {
    write_file(folder / "manifest.ocdbt",
               frame(kManifestMagic, config(1, o, o.compress_nodes),
                     o.compress_nodes));
    write_file(folder / "manifest.0000000000000001", root_manifest);
    written.manifests.push_back("manifest.0000000000000001");
  } else {
    write_file(folder / "manifest.ocdbt", root_manifest);
  }
  written.manifests.push_back("manifest.ocdbt");
  return written;
}

Written write_checkpoint(const fs::path& dir, const std::vector<Leaf>& leaves,
                         const Options& options) {
  fs::create_directories(dir);
  const json meta = {
      {"item_handlers",
       {{"state",
         "orbax.checkpoint.experimental.v1._src.handlers.pytree_handler."
         "PyTreeHandler"}}},
      {"metrics", json::object()},
      {"performance_metrics", json::object()},
      {"init_timestamp_nsecs", 1700000000000000000ll},
      {"commit_timestamp_nsecs", 1700000001000000000ll},
      {"custom_metadata", json::object()}};
  write_file(dir / "_CHECKPOINT_METADATA", meta.dump());
  write_file(dir / "orbax.checkpoint", "");
  return write_pytree(dir / "state", leaves, options);
}

}  // namespace ckpt::test::orbax
