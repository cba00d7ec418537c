// The files below one folder, opened by relative paths that come from disk
// (a data file an OCDBT node names, an array's folder): every component is
// opened without following symbolic links, so nothing outside the folder
// is ever reached.
#ifndef CKPT_PLUGINS_PYTREE_ORBAX_FOLDER_FILES_H_
#define CKPT_PLUGINS_PYTREE_ORBAX_FOLDER_FILES_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace ckpt::pytree::orbax {

// Whether `path` may name a file inside a folder: relative, at most 65535
// bytes, made of non-empty components other than "." and "..", no NUL.
bool is_safe_relative_path(std::string_view path);

// Thread-safe; each file is opened once and stays open.
class FolderFiles {
 public:
  // Opens `folder`; `what` names its owner in messages ("pytree
  // checkpointable 'state'"). Throws sdk::Error with the errno's code.
  FolderFiles(const std::string& folder, std::string what);
  ~FolderFiles();
  FolderFiles(const FolderFiles&) = delete;
  FolderFiles& operator=(const FolderFiles&) = delete;

  // The size of file `path`; nullopt when it does not exist. Throws
  // CKPT_ERROR_DATA_LOSS naming it for an unsafe path, a symbolic link, a
  // file where a folder should be, or anything but a regular file.
  std::optional<uint64_t> size_if_exists(const std::string& path) const;
  // The same, with a missing file DATA_LOSS "<file> is missing (<role>)".
  uint64_t size(const std::string& path, const std::string& role) const;

  // Bytes [offset, offset + length) of `path` into `out`, after checking
  // the file has them: DATA_LOSS naming the file and the `kind` of data
  // otherwise ("the B+tree node at bytes [...] lies beyond its N bytes").
  void read(const std::string& path, uint64_t offset, uint64_t length,
            const std::string& role, const char* kind, void* out) const;
  std::string read(const std::string& path, uint64_t offset, uint64_t length,
                   const std::string& role, const char* kind) const;

  // "<folder>/<path>", for messages.
  std::string shown(const std::string& path) const;
  const std::string& what() const { return what_; }
  int folder_fd() const { return folder_fd_; }

 private:
  struct File {
    int fd = -1;
    uint64_t size = 0;
  };
  // Null when missing.
  const File* open(const std::string& path) const;

  std::string folder_;
  std::string what_;
  int folder_fd_ = -1;
  mutable std::mutex mutex_;  // guards files_
  mutable std::map<std::string, std::unique_ptr<File>> files_;
};

}  // namespace ckpt::pytree::orbax

#endif  // CKPT_PLUGINS_PYTREE_ORBAX_FOLDER_FILES_H_
