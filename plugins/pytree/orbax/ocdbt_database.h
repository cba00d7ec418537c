// An OCDBT database in a local folder, read only: the key-value pairs of
// its latest generation. Python Orbax writes one per pytree checkpointable
// (its manifest.ocdbt in the checkpointable's folder; the B+tree and the
// values in d/ and in the per-process sub-databases ocdbt.process_<N>/ it
// refers to).
#ifndef CKPT_PLUGINS_PYTREE_ORBAX_OCDBT_DATABASE_H_
#define CKPT_PLUGINS_PYTREE_ORBAX_OCDBT_DATABASE_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "orbax/folder_files.h"
#include "orbax/ocdbt_format.h"

namespace ckpt::pytree::ocdbt {

// Where a value is: inline in a B+tree node, or a range of a data file.
struct ValueLocation {
  std::shared_ptr<const BtreeNode> node;  // keeps `inline_value` alive
  std::string_view inline_value;
  bool is_inline = true;
  std::string file;  // path relative to the database's folder
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t size() const { return is_inline ? inline_value.size() : length; }
};

// Thread-safe: lookups and reads may run on several threads at once.
class Database {
 public:
  // Opens the database whose manifest.ocdbt is in `folder`. `what` names
  // its owner in messages ("pytree checkpointable 'state'"). Throws
  // sdk::Error naming `what` and the file: NOT_FOUND when there is no
  // manifest.ocdbt, DATA_LOSS when it is damaged or names a data file
  // outside `folder`.
  Database(const std::string& folder, std::string what);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Where the value of `key` is in the latest generation; nullopt when it
  // has no such key. Reads (and keeps) the B+tree nodes on the way.
  // Throws DATA_LOSS naming the file of a damaged or missing node.
  std::optional<ValueLocation> find(std::string_view key) const;

  // The bytes of a value `find` located. A value of a data file is read
  // after checking that the file holds its range: DATA_LOSS naming the
  // file otherwise.
  std::string read(const ValueLocation& where) const;

  // Calls visit(key, entry, file) for every key of the latest generation,
  // in key order: `key` whole, `entry` as stored in its leaf node (its key
  // relative), `file` the data file of a value that is not inline (its path
  // relative to the database's folder), else null. Throws DATA_LOSS naming
  // the file of a damaged or missing node.
  using Visit = std::function<void(
      const std::string& key, const LeafEntry& entry, const DataFile* file)>;
  void for_each(const Visit& visit) const;

  const Manifest& manifest() const { return manifest_; }
  const orbax::FolderFiles& files() const { return files_; }

 private:
  std::shared_ptr<const BtreeNode> node(const DataFile& file,
                                        const DataRef& ref,
                                        uint8_t expected_height,
                                        std::string_view inclusive_min) const;
  Manifest read_manifest(const std::string& name) const;
  [[noreturn]] void damaged(const std::string& file,
                            const std::string& why) const;

  orbax::FolderFiles files_;
  Manifest manifest_;
  std::string manifest_file_;  // manifest.ocdbt, or a numbered manifest
  mutable std::mutex mutex_;   // guards nodes_
  mutable std::map<std::string, std::shared_ptr<const BtreeNode>> nodes_;
};

}  // namespace ckpt::pytree::ocdbt

#endif  // CKPT_PLUGINS_PYTREE_ORBAX_OCDBT_DATABASE_H_
