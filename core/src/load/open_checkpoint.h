// The core's side of ckpt/layout.h: checkpointable names, temporary folder
// names and the text of _CHECKPOINT_METADATA.
#ifndef CKPT_SRC_LOAD_OPEN_CHECKPOINT_H_
#define CKPT_SRC_LOAD_OPEN_CHECKPOINT_H_

#include <ckpt/layout.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "format/checksums.h"

namespace ckpt::internal {

// InvalidArgumentError unless `name` can be a checkpointable saved by the
// caller: not empty, not reserved (metrics, AUTO), one plain path component
// (no '/', '\0', '.', '..'), not hidden, not a temporary folder name.
void check_checkpointable_name(const std::string& name, bool allow_reserved);

// True when `name` is the name of a temporary save folder.
bool is_temporary_name(const std::string& name);

// `<parent>/<final name>.orbax-checkpoint-tmp-<unique>`, where <unique>
// also names this process (temporary_name_suffix in save_owner.h).
std::filesystem::path temporary_path_for(
    const std::filesystem::path& final_path);

// The JSON text of _CHECKPOINT_METADATA for `info`.
std::string checkpoint_metadata_json(const CheckpointInfo& info);

// Whether `folder` holds a pytree (_METADATA).
bool is_pytree_folder(const std::filesystem::path& folder);

// A checkpoint opened for reading: its folder opened once (every part is
// read through it, so one load sees one version), _CHECKPOINT_METADATA
// read and, when the checkpoint has them, checked against _CHECKSUMS.
struct OpenedCheckpoint {
  std::unique_ptr<CheckpointDir> dir;
  CheckpointInfo info;  // info.path: the path the caller named
  std::optional<ChecksumRecord> checksums;

  // The folder a handler is given for checkpointable `name`, beneath
  // dir->root().
  std::filesystem::path folder_of(const std::string& name) const;
  // The checkpointables, as list_checkpointables(info).
  std::vector<std::string> checkpointables() const;
  // Checks the files of `name` against _CHECKSUMS (see
  // check_checkpointable_bytes); false when none are recorded.
  bool check(const std::string& name) const;
};

// The checkpointable folders in `path` (a checkpoint of `info`'s layout),
// reserved and hidden names excluded, sorted.
std::vector<std::string> list_checkpointables_in(
    const std::filesystem::path& path, const CheckpointInfo& info);

// Validates the layout and reads _CHECKPOINT_METADATA (and _CHECKSUMS);
// the errors of read_checkpoint_info.
OpenedCheckpoint open_checkpoint(const std::filesystem::path& path);

}  // namespace ckpt::internal

#endif  // CKPT_SRC_LOAD_OPEN_CHECKPOINT_H_
