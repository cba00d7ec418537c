// The checksums of a checkpoint (layout.h: _CHECKSUMS).
//
// At commit the core records every file and folder of the temporary
// checkpoint in _CHECKSUMS: a file's size and XXH3-64, or only its size
// for the files its handler checks itself (ckpt_handler_type
// .self_checked_files, e.g. the pytree's arrays.h5, whose arrays carry
// their own checksums so that a partial load hashes only what it reads).
// Before a handler sees a checkpointable's folder, its files are checked
// against that record: a changed, missing, added or non-regular file is
// DataLossError naming it.
//
// _CHECKSUMS is text, one record per line, every path relative to the
// checkpoint with '/' between components and bytes outside printable
// ASCII (and '%' and ' ') percent-encoded:
//
//   ckpt-checksums 1
//   d <path>                       a folder
//   f <size> <xxh3 in hex> <path>  a file the core checks
//   h <size> <path>                a file its handler checks
//   end <xxh3 in hex>              XXH3-64 of every byte above this line
#ifndef CKPT_SRC_FORMAT_CHECKSUMS_H_
#define CKPT_SRC_FORMAT_CHECKSUMS_H_

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "format/checkpoint_dir.h"

namespace ckpt::internal {

struct FileRecord {
  enum class Type { kFolder, kFile, kSelfChecked };
  Type type = Type::kFile;
  std::string path;  // relative, '/'-separated
  uint64_t size = 0;
  uint64_t xxh3 = 0;  // kFile only
};

struct ChecksumRecord {
  std::vector<FileRecord> records;  // sorted by path, unique
  const FileRecord* find(std::string_view path) const;
};

// A 64-bit hash as 16 lower-case hex digits, and back (exactly 16 digits,
// either case; false for anything else).
std::string hex16(uint64_t v);
bool parse_hex16(std::string_view s, uint64_t& out);

// XXH3-64 of `size` bytes.
uint64_t xxh3_of(const void* data, size_t size);

// XXH3-64 of the regular file at `path`, and its size.
struct FileDigest {
  uint64_t size = 0;
  uint64_t xxh3 = 0;
};
FileDigest xxh3_of_file(const std::string& path);

// The files of a checkpointable's folder whose handler checks their bytes
// itself (HandlerInfo::self_checked_files and _prefixes).
struct SelfCheckedFiles {
  std::vector<std::string> names;
  std::vector<std::string> prefixes;
  // Whether `name`, a file directly in the folder, is one of them.
  bool covers(const std::string& name) const;
};

// Walks `root` (a temporary checkpoint being committed) and records every
// folder and regular file under it; `self_checked` maps a checkpointable
// name to the files in its folder that its handler checks itself.
// A symbolic link or special file is InvalidArgumentError naming it (a
// checkpoint holds only folders and regular files).
ChecksumRecord record_checksums(
    const std::filesystem::path& root,
    const std::map<std::string, SelfCheckedFiles>& self_checked);

// The text of _CHECKSUMS, and back. parse_checksums throws DataLossError
// naming `shown` for anything but a well-formed, intact record.
std::string checksums_text(const ChecksumRecord& record);
ChecksumRecord parse_checksums(std::string_view text, const std::string& shown);

// Checks the files of checkpointable folder `folder` (relative to `dir`;
// "" for the checkpoint's own files at the root) against `record`:
// DataLossError naming the first file that is missing, unrecorded, of
// another size or content, or not a regular file. Files whose handler
// checks them are checked for size only.
void check_against_record(const CheckpointDir& dir,
                          const ChecksumRecord& record,
                          const std::string& folder);

}  // namespace ckpt::internal

#endif  // CKPT_SRC_FORMAT_CHECKSUMS_H_
