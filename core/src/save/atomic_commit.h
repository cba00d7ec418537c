// Making a checkpoint appear at its final path all at once.
//
// A save writes a temporary folder, makes every file durable, and renames
// the folder to its final name. Overwriting swaps the two folders with
// renameat2(RENAME_EXCHANGE), so at every moment the final path holds either
// the old or the new checkpoint, complete; the old one is deleted only
// after the swap is durable.
#ifndef CKPT_SRC_SAVE_ATOMIC_COMMIT_H_
#define CKPT_SRC_SAVE_ATOMIC_COMMIT_H_

#include <ckpt/layout.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "format/checksums.h"

namespace ckpt::internal {

// Writes `text` into a new file `path` with permission bits `mode`.
void write_file(const std::filesystem::path& path, const std::string& text,
                unsigned mode);

// fsyncs every file and folder under `root`, and `root` itself.
void fsync_tree(const std::filesystem::path& root);
void fsync_directory(const std::filesystem::path& dir);

// AlreadyExistsError explaining why, unless `final_path` is absent, an
// empty folder or a checkpoint (ckpt's or Orbax's: it has
// _CHECKPOINT_METADATA, the orbax.checkpoint marker or a root _METADATA).
// A symbolic link is never replaced.
void check_replaceable(const std::filesystem::path& final_path);

// Renames `temporary` to `final_path`. Without overwrite an existing final
// path is AlreadyExistsError; with it the two are exchanged (after
// check_replaceable) and the old checkpoint removed. `durable`: fsync the
// parent folder after the rename.
void commit_folder(const std::filesystem::path& temporary,
                   const std::filesystem::path& final_path, bool overwrite,
                   bool durable);

// Best-effort recursive removal (errors logged, not thrown).
void remove_quietly(const std::filesystem::path& path);

// A checkpoint being written: a temporary folder beside the final path that
// either becomes the checkpoint all at once (commit) or disappears
// (discard, also when destroyed uncommitted). Not thread-safe.
class TemporaryCheckpoint {
 public:
  // Creates `<final>.orbax-checkpoint-tmp-<unique>` with permission bits
  // `directory_mode`, and the parent folders of `final_path` as needed.
  TemporaryCheckpoint(std::filesystem::path final_path,
                      unsigned directory_mode);
  // The temporary folder `folder` of `final_path` that another process
  // made (a multi-process save): this process adds its files to it, and
  // neither commits it nor removes it.
  static std::unique_ptr<TemporaryCheckpoint> attach(
      std::filesystem::path final_path, std::filesystem::path folder,
      unsigned directory_mode);
  ~TemporaryCheckpoint();
  TemporaryCheckpoint(const TemporaryCheckpoint&) = delete;
  TemporaryCheckpoint& operator=(const TemporaryCheckpoint&) = delete;

  const std::filesystem::path& folder() const { return folder_; }
  const std::filesystem::path& final_path() const { return final_path_; }

  // Creates the folder of checkpointable `name` and returns its path.
  // `self_checked`: the files in it whose handler checks their bytes
  // itself, recorded by size only.
  std::filesystem::path add_folder(const std::string& name,
                                   const SelfCheckedFiles& self_checked = {});

  // Writes _CHECKPOINT_METADATA (of `info`), the marker,
  // commit_success.txt and, last, _CHECKSUMS (every file's size and
  // checksum) with permission bits `file_mode`, makes the tree
  // durable (when `durable`), and renames it to the final path, exchanging
  // it with an existing checkpoint when `overwrite` (see commit_folder).
  // On failure the temporary folder is discarded and the error rethrown.
  void commit(const CheckpointInfo& info, unsigned file_mode, bool overwrite,
              bool durable);

  // Removes the temporary folder (quietly); idempotent. Does nothing to a
  // folder this process only attached to.
  void discard();

 private:
  TemporaryCheckpoint() = default;

  std::filesystem::path final_path_;
  std::filesystem::path folder_;
  unsigned directory_mode_ = 0755;
  std::map<std::string, SelfCheckedFiles> self_checked_;
  bool done_ = false;
  bool owner_ = true;  // false: attached
};

}  // namespace ckpt::internal

#endif  // CKPT_SRC_SAVE_ATOMIC_COMMIT_H_
