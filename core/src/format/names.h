// The names of a checkpoint's parts that ckpt decides: which checkpointable
// names a caller may use, and the names of the temporary folders saves
// write into (ckpt/layout.h holds the fixed file names).
//
// A temporary folder is `<final name>.orbax-checkpoint-tmp-<nanoseconds>-
// <pid>-<counter>-<tag>`: Orbax's infix (so Orbax, too, never takes it for
// a checkpoint), then what makes it unique and names its writer: the pid,
// and a tag of host and boot (host_boot_tag), from the moment it exists.
#ifndef CKPT_SRC_FORMAT_NAMES_H_
#define CKPT_SRC_FORMAT_NAMES_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace ckpt::internal {

// InvalidArgumentError unless `name` can be a checkpointable saved by the
// caller: not empty, not reserved (metrics, AUTO), one plain path component
// (no '/', '\0', '.', '..'), not hidden, not a temporary folder name.
void check_checkpointable_name(const std::string& name, bool allow_reserved);

// InvalidArgumentError naming `what` unless `path` is a relative,
// '/'-separated path of at most 1024 bytes whose components are not empty,
// "." or "..", without '\0': a path that stays below the folder it is
// joined to (a key of a RemoteStore, a file of a remote checkpoint).
void check_relative_key(const std::string& path, const std::string& what);

// True when `name` is the name of a temporary save folder.
bool is_temporary_name(const std::string& name);

// A new temporary folder's path for a save to `final_path`, beside it and
// written by this process. A final name too long for the whole to fit in
// 255 bytes is shortened, kept unique by a hash of it.
std::filesystem::path temporary_path_for(
    const std::filesystem::path& final_path);

// Whether temporary folder name `name` is one of a save to a path whose
// final name is `final_name` (temporary_path_for, shortened or not).
bool is_temporary_of(const std::string& name, const std::string& final_name);

// 8 hex digits naming host and boot together.
std::string host_boot_tag(const std::string& host, const std::string& boot_id);

// The writer a temporary folder's name gives: its pid, and the tag of its
// host and boot. Nullopt when `name` is not such a name.
struct TemporaryNameOwner {
  int64_t pid = 0;
  std::string tag;
};
std::optional<TemporaryNameOwner> owner_in_temporary_name(
    const std::string& name);

}  // namespace ckpt::internal

#endif  // CKPT_SRC_FORMAT_NAMES_H_
