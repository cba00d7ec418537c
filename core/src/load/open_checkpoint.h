// Opening a checkpoint for reading: the layout checks of a load (Orbax's,
// in order, and ckpt's stricter ones for checkpoints with checksums), then
// _CHECKPOINT_METADATA and _CHECKSUMS read through the one opened folder.
#ifndef CKPT_SRC_LOAD_OPEN_CHECKPOINT_H_
#define CKPT_SRC_LOAD_OPEN_CHECKPOINT_H_

#include <ckpt/layout.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "format/checkpoint_dir.h"
#include "format/checksums.h"

namespace ckpt::internal {

// A checkpoint opened for reading: its folder opened once (every part is
// read through it, so one load sees one version), _CHECKPOINT_METADATA
// read and, when the checkpoint has them, checked against _CHECKSUMS.
struct OpenedCheckpoint {
  std::shared_ptr<const CheckpointDir> dir;
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

// How many times a read opens its checkpoint again after finding it
// replaced (see with_opened_checkpoint): 4 tries in all.
inline constexpr int kReplacedRetries = 3;

// Opens the checkpoint at `path` (validating its layout and reading
// _CHECKPOINT_METADATA and _CHECKSUMS: the errors of read_checkpoint_info)
// and runs `read` on it. One try sees one version of the folder. When a try
// fails and the folder it opened has been deleted or replaced since (an
// overwrite or a delete raced the read), the failure says nothing about the
// checkpoint's bytes: the path is opened again, at most kReplacedRetries
// times. The path gone is NotFoundError; still replaced on the last try,
// TimeoutError. A failure on a folder still in place is passed on as is:
// DataLossError means bytes at a stable path differ from their record.
void with_opened_checkpoint_tries(
    const std::filesystem::path& path,
    const std::function<void(const OpenedCheckpoint&)>& read);

// The same, returning what the successful try of `read` returned.
template <typename Read>
auto with_opened_checkpoint(const std::filesystem::path& path, Read read) {
  std::optional<decltype(read(std::declval<const OpenedCheckpoint&>()))> out;
  with_opened_checkpoint_tries(path, [&](const OpenedCheckpoint& checkpoint) {
    out = read(checkpoint);
  });
  return std::move(*out);
}

}  // namespace ckpt::internal

#endif  // CKPT_SRC_LOAD_OPEN_CHECKPOINT_H_
