// A checkpoint folder opened once for reading.
#ifndef CKPT_SRC_FORMAT_CHECKPOINT_DIR_H_
#define CKPT_SRC_FORMAT_CHECKPOINT_DIR_H_

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>

namespace ckpt::internal {

// A checkpoint folder opened once: every read goes through its descriptor,
// so a concurrent overwrite (which renames another folder into the path)
// or delete cannot mix two versions into one load.
class CheckpointDir {
 public:
  // NotFoundError when `path` does not exist; InvalidLayoutError when it is
  // no folder.
  explicit CheckpointDir(const std::filesystem::path& path);
  ~CheckpointDir();
  CheckpointDir(const CheckpointDir&) = delete;
  CheckpointDir& operator=(const CheckpointDir&) = delete;

  int fd() const { return fd_; }
  // The path the caller named.
  const std::filesystem::path& path() const { return path_; }
  // The path handlers are given: /proc/self/fd/<fd>, which names the opened
  // folder whatever is renamed over `path` meanwhile.
  const std::filesystem::path& root() const { return root_; }

  // The content of the regular file `relative`, or nullopt when it does not
  // exist. Never follows a symbolic link, never blocks on a FIFO: anything
  // but a regular file, or one above `limit` bytes, is DataLossError.
  std::optional<std::string> read_file(const std::string& relative,
                                       size_t limit) const;
  // True when the folder has been deleted since it was opened, or path()
  // now names another folder (an overwrite replaced it).
  bool deleted() const;
  // `message` with the handler-facing root replaced by path().
  std::string shown(const std::string& message) const;

 private:
  std::filesystem::path path_;
  std::filesystem::path root_;
  int fd_ = -1;
};

}  // namespace ckpt::internal

#endif  // CKPT_SRC_FORMAT_CHECKPOINT_DIR_H_
