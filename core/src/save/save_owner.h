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

#include "util/process_identity.h"

namespace ckpt::internal {

// The owner record's name inside a temporary folder (hidden: never a
// checkpointable).
inline constexpr const char* kOwnerFile = ".ckpt-owner";

// A save's owner: the process writing it.
using SaveOwner = ProcessIdentity;

// This process.
inline const SaveOwner& this_owner() { return this_process(); }

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

// Removes temporary folder `folder` when its save died on this host and
// boot (kGone), logging why; true when it did.
bool remove_if_dead(const std::filesystem::path& folder, OwnerState state,
                    const std::string& description);

// Before a save to `final_path`: removes the temporary folders of earlier
// saves to it that died, by remove_if_dead's rules, and reports the others
// (another host's, another boot's, not ckpt's) once per process. A save
// in flight (its owner alive) is left alone.
void remove_dead_temporaries_of(const std::filesystem::path& final_path);

}  // namespace ckpt::internal

#endif  // CKPT_SRC_SAVE_SAVE_OWNER_H_
