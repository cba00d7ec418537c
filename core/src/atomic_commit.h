// Making a checkpoint appear at its final path all at once.
//
// A save writes a temporary folder, makes every file durable, and renames
// the folder to its final name. Overwriting swaps the two folders with
// renameat2(RENAME_EXCHANGE), so at every moment the final path holds either
// the old or the new checkpoint, complete; the old one is deleted only
// after the swap is durable.
#ifndef CKPT_SRC_ATOMIC_COMMIT_H_
#define CKPT_SRC_ATOMIC_COMMIT_H_

#include <filesystem>
#include <string>

namespace ckpt::internal {

// Writes `text` into a new file `path` with permission bits `mode`.
void write_file(const std::filesystem::path& path, const std::string& text,
                unsigned mode);

// fsyncs every file and folder under `root`, and `root` itself.
void fsync_tree(const std::filesystem::path& root);
void fsync_directory(const std::filesystem::path& dir);

// Renames `temporary` to `final_path`. Without overwrite an existing final
// path is AlreadyExistsError; with it the two are exchanged and the old
// checkpoint removed. `durable`: fsync the parent folder after the rename.
void commit_folder(const std::filesystem::path& temporary,
                   const std::filesystem::path& final_path, bool overwrite,
                   bool durable);

// Best-effort recursive removal (errors logged, not thrown).
void remove_quietly(const std::filesystem::path& path);

}  // namespace ckpt::internal

#endif  // CKPT_SRC_ATOMIC_COMMIT_H_
