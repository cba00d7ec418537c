#include "orbax/ocdbt_database.h"

#include <ckpt/abi.h>
#include <ckpt/sdk/error.h>
#include <ckpt/sdk/files.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ckpt::pytree::ocdbt {

namespace {

using ckpt::sdk::Error;

constexpr const char* kManifestFile = "manifest.ocdbt";
// What every file of the database is, for "<file> is missing (...)".
const std::string kRole = "a file of the OCDBT database of its arrays";
// A manifest is small: its configuration and at most 2^16 generations.
constexpr uint64_t kMaxManifestBytes = uint64_t{64} << 20;

std::string offset_text(uint64_t offset, uint64_t length) {
  return "bytes [" + std::to_string(offset) + ", " +
         std::to_string(offset + length) + ")";
}

// The numbered manifests ("manifest." and 16 lowercase hex digits) of the
// folder, newest last.
std::vector<std::string> numbered_manifests(int folder_fd) {
  std::vector<std::string> out;
  const int fd = ::openat(folder_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return out;
  DIR* dir = ::fdopendir(fd);
  if (!dir) {
    ::close(fd);
    return out;
  }
  while (const dirent* e = ::readdir(dir)) {
    const std::string name = e->d_name;
    const std::string prefix = "manifest.";
    if (name.size() != prefix.size() + 16 || name.rfind(prefix, 0) != 0) {
      continue;
    }
    if (name.find_first_not_of("0123456789abcdef", prefix.size()) ==
        std::string::npos) {
      out.push_back(name);
    }
  }
  ::closedir(dir);
  std::sort(out.begin(), out.end());  // fixed width: by generation
  return out;
}

}  // namespace

Database::Database(const std::string& folder, std::string what)
    : files_(folder, std::move(what)) {
  manifest_file_ = kManifestFile;
  manifest_ = read_manifest(manifest_file_);
  if (manifest_.config.manifest_kind == 1) {
    // Numbered: manifest.ocdbt holds the configuration only; the newest
    // manifest.<generation> the generations.
    const std::vector<std::string> numbered =
        numbered_manifests(files_.folder_fd());
    if (numbered.empty()) {
      damaged(manifest_file_,
              "it says the generations are in numbered manifests, and there "
              "are none");
    }
    manifest_file_ = numbered.back();
    Manifest latest = read_manifest(manifest_file_);
    if (latest.config.manifest_kind != 0 ||
        std::memcmp(latest.config.uuid, manifest_.config.uuid, 16) != 0) {
      damaged(manifest_file_, "not a manifest of this database");
    }
    const uint64_t generation = std::stoull(
        manifest_file_.substr(manifest_file_.size() - 16), nullptr, 16);
    if (latest.versions.back().generation != generation) {
      damaged(manifest_file_,
              "its newest generation is not the one its name says");
    }
    manifest_ = std::move(latest);
  }
}

Database::~Database() = default;

Manifest Database::read_manifest(const std::string& name) const {
  const uint64_t size = files_.size(name, kRole);
  if (size > kMaxManifestBytes) {
    damaged(name, "a manifest of " + std::to_string(size) + " bytes");
  }
  const std::string bytes = files_.read(name, 0, size, kRole, "manifest");
  try {
    return decode_manifest(bytes);
  } catch (const Damaged& e) {
    damaged(name, e.what());
  }
}

void Database::damaged(const std::string& file, const std::string& why) const {
  throw Error(CKPT_ERROR_DATA_LOSS, files_.what() + ": " + files_.shown(file) +
                                        " is damaged (" + why + ")");
}

std::shared_ptr<const BtreeNode> Database::node(
    const DataFile& data_file, const DataRef& ref, uint8_t expected_height,
    std::string_view inclusive_min) const {
  const std::string path = data_file.path();
  const std::string cache_key = path + '\0' + std::to_string(ref.offset) + ':' +
                                std::to_string(ref.length);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = nodes_.find(cache_key);
    if (it != nodes_.end()) return it->second;
  }
  const std::string bytes =
      files_.read(path, ref.offset, ref.length, kRole, "B+tree node");
  // A node is at most what the database's configuration allows, with room
  // to spare, never more than the reader's own limit.
  const uint64_t limit = std::min<uint64_t>(
      kMaxDecodedBytes,
      std::max<uint64_t>(
          uint64_t{64} << 20,
          uint64_t{2} * manifest_.config.max_decoded_node_bytes));
  auto decoded = std::make_shared<BtreeNode>();
  const std::string where =
      "the B+tree node at " + offset_text(ref.offset, ref.length) + ": ";
  try {
    *decoded = decode_btree_node(bytes, data_file.base_path, limit);
  } catch (const Damaged& e) {
    damaged(path, where + e.what());
  }
  if (decoded->height != expected_height) {
    damaged(path, where + "height " + std::to_string(decoded->height) +
                      " where its parent says " +
                      std::to_string(expected_height));
  }
  const std::string& first = decoded->height == 0
                                 ? decoded->leaves.front().key
                                 : decoded->children.front().key;
  if (std::string_view(first) < inclusive_min) {
    damaged(path, where + "its first key is below the one its parent gives");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  auto [it, fresh] = nodes_.emplace(cache_key, std::move(decoded));
  return it->second;
}

std::optional<ValueLocation> Database::find(std::string_view key) const {
  if (manifest_.versions.empty()) return std::nullopt;
  const Version& latest = manifest_.versions.back();
  if (latest.root.missing()) return std::nullopt;
  DataFile file = manifest_.files[latest.root.file];
  DataRef ref = latest.root;
  uint8_t height = latest.root_height;
  std::string inclusive_min;
  std::shared_ptr<const BtreeNode> parent;  // keeps `file` and keys alive
  std::string_view rest = key;              // relative to the subtree
  for (;;) {
    std::shared_ptr<const BtreeNode> n = node(file, ref, height, inclusive_min);
    if (n->height == 0) {
      auto it = std::lower_bound(
          n->leaves.begin(), n->leaves.end(), rest,
          [](const LeafEntry& e, std::string_view k) { return e.key < k; });
      if (it == n->leaves.end() || it->key != rest) return std::nullopt;
      ValueLocation where;
      where.is_inline = it->is_inline;
      if (it->is_inline) {
        where.inline_value = it->value;
        where.node = n;
      } else {
        where.file = n->files[it->ref.file].path();
        where.offset = it->ref.offset;
        where.length = it->ref.length;
      }
      return where;
    }
    // The last child whose smallest key is at most `rest`.
    auto it = std::upper_bound(
        n->children.begin(), n->children.end(), rest,
        [](std::string_view k, const InteriorEntry& e) { return k < e.key; });
    if (it == n->children.begin()) return std::nullopt;
    --it;
    const std::string_view common =
        std::string_view(it->key).substr(0, it->subtree_common_prefix_length);
    if (rest.substr(0, common.size()) != common) return std::nullopt;
    rest.remove_prefix(common.size());
    inclusive_min = it->key.substr(it->subtree_common_prefix_length);
    file = n->files[it->child.file];
    ref = it->child;
    height = static_cast<uint8_t>(n->height - 1);
    parent = std::move(n);
  }
}

void Database::for_each(const Visit& visit) const {
  if (manifest_.versions.empty()) return;
  const Version& latest = manifest_.versions.back();
  if (latest.root.missing()) return;
  // Depth first, children in order: a stack of the nodes still to visit,
  // each with the prefix its keys are relative to.
  struct Pending {
    DataFile file;
    DataRef ref;
    uint8_t height;
    std::string prefix, inclusive_min;
  };
  std::vector<Pending> stack = {{manifest_.files[latest.root.file], latest.root,
                                 latest.root_height, "", ""}};
  while (!stack.empty()) {
    Pending p = std::move(stack.back());
    stack.pop_back();
    std::shared_ptr<const BtreeNode> n =
        node(p.file, p.ref, p.height, p.inclusive_min);
    if (n->height == 0) {
      for (const LeafEntry& e : n->leaves) {
        visit(p.prefix + e.key, e,
              e.is_inline ? nullptr : &n->files[e.ref.file]);
      }
      continue;
    }
    for (auto it = n->children.rbegin(); it != n->children.rend(); ++it) {
      stack.push_back(
          {n->files[it->child.file], it->child,
           static_cast<uint8_t>(n->height - 1),
           p.prefix + it->key.substr(0, it->subtree_common_prefix_length),
           it->key.substr(it->subtree_common_prefix_length)});
    }
  }
}

std::string Database::read(const ValueLocation& where) const {
  if (where.is_inline) return std::string(where.inline_value);
  return files_.read(where.file, where.offset, where.length, kRole, "value");
}

}  // namespace ckpt::pytree::ocdbt
