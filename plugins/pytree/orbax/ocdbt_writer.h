// Writes OCDBT databases as TensorStore lays them out for Orbax: a
// manifest.ocdbt of one generation and a B+tree of at most 1024 entries
// per node in d/<random name>, over values already written (inline, or
// ranges of data files), and gathers the entries of existing databases
// so that one database can refer to the values of others.
#ifndef CKPT_PLUGINS_PYTREE_ORBAX_OCDBT_WRITER_H_
#define CKPT_PLUGINS_PYTREE_ORBAX_OCDBT_WRITER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "orbax/ocdbt_database.h"
#include "orbax/ocdbt_format.h"

namespace ckpt::pytree::ocdbt {

// Values up to this size are stored inline in the B+tree (Orbax's
// configuration).
constexpr uint32_t kMaxInlineValueBytes = 1024;

// A key and its value: inline bytes, or a range of a data file (ref.file:
// an index into the data files given with the entries).
struct Entry {
  std::string key;
  LeafEntry value;  // value.key unused
};

// `bytes` random bytes as lowercase hex (file names, uuids).
std::string random_hex(size_t bytes);

// Writes the database of `folder` + `database` (a folder name ending in
// '/', or empty for `folder` itself): its B+tree file in d/ and its
// manifest.ocdbt over `entries` (sorted by key, distinct), whose values
// are in `value_files` (paths relative to that database). Files get
// `mode`. Throws sdk::Error naming the file on a failed write.
void write_database(const std::string& folder, const std::string& database,
                    const std::vector<Entry>& entries,
                    const std::vector<DataFile>& value_files, unsigned mode);

// Appends every entry of `database` to `entries`, its data files (relative
// to the database) to `files` under the folder `base` (relative to where
// the entries will be written, ending in '/'), each once. Throws DATA_LOSS
// naming the file of a damaged node.
void add_entries(const Database& database, const std::string& base,
                 std::vector<Entry>& entries, std::vector<DataFile>& files);

}  // namespace ckpt::pytree::ocdbt

#endif  // CKPT_PLUGINS_PYTREE_ORBAX_OCDBT_WRITER_H_
