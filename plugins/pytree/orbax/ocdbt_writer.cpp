#include "orbax/ocdbt_writer.h"

#include <ckpt/sdk/files.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>

#include "orbax/ocdbt_encode.h"

namespace ckpt::pytree::ocdbt {

namespace {

// Orbax's database configuration (TensorStore's defaults as Orbax sets
// them): nodes decoding to at most 100 MB, zstd-compressed nodes.
constexpr uint32_t kMaxDecodedNodeBytes = 100000000;
constexpr uint8_t kVersionTreeArityLog2 = 4;
// Entries per B+tree node.
constexpr size_t kNodeEntries = 1024;

// One node of a level of the B+tree being built: its keys' range and where
// it was stored.
struct Built {
  std::string first, last;  // absolute keys
  size_t prefix = 0;        // its keys are stored relative to first[0, prefix)
  DataRef ref;
  uint64_t num_keys = 0, tree_bytes = 0, indirect_bytes = 0;
};

// The leaf node of entries [s, e), described in `b` (but where it is
// stored): keys relative to their common prefix unless it is the root
// (`root`), the value files its entries refer to as its file table.
BtreeNode leaf_node(const std::vector<Entry>& entries, size_t s, size_t e,
                    bool root, const std::vector<DataFile>& value_files,
                    Built& b) {
  b.first = entries[s].key;
  b.last = entries[e - 1].key;
  b.prefix = root ? 0 : common_prefix(b.first, b.last);
  BtreeNode node;
  node.height = 0;
  std::map<uint32_t, uint32_t> table;  // value file -> node's file
  for (size_t i = s; i < e; ++i) {
    node.leaves.push_back(entries[i].value);
    LeafEntry& leaf = node.leaves.back();
    leaf.key = entries[i].key.substr(b.prefix);
    if (leaf.is_inline) continue;
    b.indirect_bytes += leaf.ref.length;
    auto [it, fresh] = table.emplace(leaf.ref.file, node.files.size());
    if (fresh) node.files.push_back(value_files.at(leaf.ref.file));
    leaf.ref.file = it->second;
  }
  b.num_keys = e - s;
  return node;
}

// A B+tree over `entries` (sorted by key), its nodes appended to `nodes`
// (the content of `node_file`); values refer to `value_files`. Returns the
// generation whose root it is (root.file 0: node_file).
Version build_tree(const std::vector<Entry>& entries,
                   const std::vector<DataFile>& value_files,
                   const DataFile& node_file, std::string& nodes) {
  Version version;
  version.generation = 1;
  if (entries.empty()) {
    version.root.offset = version.root.length = UINT64_MAX;
    return version;
  }
  // Stores `node` and describes it.
  auto store = [&](BtreeNode& node, Built built) {
    const std::string bytes =
        encode_btree_node(node, node_file.base_path, true);
    built.ref = {0, nodes.size(), bytes.size()};
    built.tree_bytes += bytes.size();
    nodes += bytes;
    return built;
  };
  std::vector<Built> level;
  const bool one_leaf = entries.size() <= kNodeEntries;
  for (size_t s = 0; s < entries.size(); s += kNodeEntries) {
    const size_t e = std::min(entries.size(), s + kNodeEntries);
    Built b;
    BtreeNode node = leaf_node(entries, s, e, one_leaf, value_files, b);
    level.push_back(store(node, std::move(b)));
  }
  uint8_t height = 0;
  while (level.size() > 1) {
    ++height;
    const bool root = level.size() <= kNodeEntries;
    std::vector<Built> up;
    for (size_t s = 0; s < level.size(); s += kNodeEntries) {
      const size_t e = std::min(level.size(), s + kNodeEntries);
      Built b;
      b.first = level[s].first;
      b.last = level[e - 1].last;
      b.prefix = root ? 0 : common_prefix(b.first, b.last);
      BtreeNode node;
      node.height = height;
      node.files = {node_file};
      for (size_t i = s; i < e; ++i) {
        const Built& c = level[i];
        InteriorEntry entry;
        entry.key = c.first.substr(b.prefix);
        entry.subtree_common_prefix_length = c.prefix - b.prefix;
        entry.child = c.ref;
        entry.num_keys = c.num_keys;
        entry.num_tree_bytes = c.tree_bytes;
        entry.num_indirect_value_bytes = c.indirect_bytes;
        node.children.push_back(std::move(entry));
        b.num_keys += c.num_keys;
        b.tree_bytes += c.tree_bytes;
        b.indirect_bytes += c.indirect_bytes;
      }
      up.push_back(store(node, std::move(b)));
    }
    level = std::move(up);
  }
  version.root_height = height;
  version.root = level[0].ref;
  version.num_keys = level[0].num_keys;
  version.num_tree_bytes = level[0].tree_bytes;
  version.num_indirect_value_bytes = level[0].indirect_bytes;
  return version;
}

}  // namespace

std::string random_hex(size_t bytes) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < bytes; ++i) {
    const auto b = static_cast<unsigned>(rng() & 0xff);
    s += digits[b >> 4];
    s += digits[b & 15];
  }
  return s;
}

void write_database(const std::string& folder, const std::string& database,
                    const std::vector<Entry>& entries,
                    const std::vector<DataFile>& value_files, unsigned mode) {
  const DataFile node_file{"", "d/" + random_hex(16)};
  std::string nodes;
  Manifest m;
  m.versions.push_back(build_tree(entries, value_files, node_file, nodes));
  m.versions.back().commit_time = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count());
  m.files = {node_file};
  const std::string uuid = random_hex(8) + random_hex(8);
  for (size_t i = 0; i < 16; ++i) {
    m.config.uuid[i] = static_cast<unsigned char>(
        std::stoi(uuid.substr(2 * i, 2), nullptr, 16));
  }
  m.config.max_inline_value_bytes = kMaxInlineValueBytes;
  m.config.max_decoded_node_bytes = kMaxDecodedNodeBytes;
  m.config.version_tree_arity_log2 = kVersionTreeArityLog2;
  m.config.compression = 1;
  m.config.zstd_level = 0;
  const std::string base = folder + "/" + database;
  if (!nodes.empty()) {
    ckpt::sdk::write_file(base + node_file.relative_path, nodes, mode);
  }
  ckpt::sdk::write_file(base + "manifest.ocdbt", encode_manifest(m), mode);
}

void add_entries(const Database& database, const std::string& base,
                 std::vector<Entry>& entries, std::vector<DataFile>& files) {
  std::map<std::string, uint32_t> index;  // files by path
  for (uint32_t i = 0; i < files.size(); ++i) index[files[i].path()] = i;
  database.for_each(
      [&](const std::string& key, const LeafEntry& e, const DataFile* f) {
        Entry out{key, e};
        if (f) {
          const DataFile file{base + f->base_path, f->relative_path};
          auto [it, fresh] =
              index.emplace(file.path(), static_cast<uint32_t>(files.size()));
          if (fresh) files.push_back(file);
          out.value.ref.file = it->second;
        }
        entries.push_back(std::move(out));
      });
}

}  // namespace ckpt::pytree::ocdbt
