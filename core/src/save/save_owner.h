// Who is writing a temporary save folder, so that a later process can tell
// a folder whose save died (removable) from one still being written.
//
// Every temporary folder carries its owner twice: in its name (the pid and
// a tag of host and boot, there from the moment the folder exists) and in
// the record file kOwnerFile inside it (host name, boot id, pid and the
// pid's start time, readable by people and robust to pid reuse). The record
// is removed just before the commit, so no checkpoint contains it.
#ifndef CKPT_SRC_SAVE_SAVE_OWNER_H_
#define CKPT_SRC_SAVE_SAVE_OWNER_H_

#include <ckpt/checkpointer.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace ckpt::internal {

// The owner record's name inside a temporary folder (hidden: never a
// checkpointable).
inline constexpr const char* kOwnerFile = ".ckpt-owner";

struct SaveOwner {
  std::string host;
  std::string boot_id;
  int64_t pid = 0;
  // The pid's start time in clock ticks after boot (/proc/<pid>/stat);
  // absent when it could not be read.
  std::optional<uint64_t> start_ticks;
};

// This process.
const SaveOwner& this_owner();

// 8 hex digits naming host and boot together (in temporary folder names).
std::string host_boot_tag(const std::string& host, const std::string& boot_id);

// The record's text, and parsing it back (nullopt when it is not one).
std::string owner_record_text(const SaveOwner& owner);
std::optional<SaveOwner> parse_owner_record(const std::string& text);

// What is known of a folder's owner: TemporaryFolder::Owner
// (ckpt/checkpointer.h) says what each state means.
using OwnerState = TemporaryFolder::Owner;

// What is known of the owner of temporary folder `folder`: its record, or
// failing that the pid and tag in its name.
struct FolderOwner {
  OwnerState state = OwnerState::kUnknown;
  std::optional<SaveOwner> owner;  // from the record, or partly from the name
  std::string description;         // "pid 123 on host h", for messages
};
FolderOwner owner_of_temporary(const std::filesystem::path& folder);

// The suffix of a new temporary folder's name after kTemporaryInfix:
// "-<nanoseconds>-<pid>-<counter>-<host boot tag>".
std::string temporary_name_suffix();

}  // namespace ckpt::internal

#endif  // CKPT_SRC_SAVE_SAVE_OWNER_H_
