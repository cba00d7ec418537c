// ckpt/sdk/files.h -- whole-file reads and writes for handlers.
//
// Errors are sdk::Error naming the file, with the code of its errno
// (error_code_from_errno: CKPT_ERROR_NOT_FOUND for a missing file,
// CKPT_ERROR_NO_SPACE for a full disk, ...). Handlers never
// fsync: the core makes a checkpoint durable before it commits it.
#ifndef CKPT_SDK_FILES_H_
#define CKPT_SDK_FILES_H_

#include <ckpt/sdk/error.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

namespace ckpt::sdk {

// `directory`/`name`: the one way plugins build a path in their folder.
// `name` is a plain file name (no '/'), e.g. a handler's configured
// filename.
inline std::string join_path(const std::string& directory,
                             const std::string& name) {
  if (directory.empty() || directory.back() == '/') return directory + name;
  return directory + "/" + name;
}

// Creates `path` (which must not exist) with permission bits `mode` and
// writes `size` bytes of `data` into it.
inline void write_file(const std::string& path, const void* data, size_t size,
                       unsigned mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                  static_cast<mode_t>(mode));
  if (fd < 0) {
    throw_os_error(errno, "cannot create " + path);
  }
  const char* p = static_cast<const char*>(data);
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::write(fd, p + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      throw_os_error(err, "cannot write " + path);
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) {
    throw_os_error(errno, "cannot write " + path);
  }
}

inline void write_file(const std::string& path, const std::string& text,
                       unsigned mode) {
  write_file(path, text.data(), text.size(), mode);
}

// The whole content of the regular file `path`; false (and `out`
// untouched) when it does not exist. Anything but a regular file -- a
// symbolic link (never followed), a FIFO (never waited on), a device, a
// folder -- is CKPT_ERROR_DATA_LOSS "<path> is not a regular file": a
// checkpoint holds only folders and regular files.
inline bool read_file_if_exists(const std::string& path, std::string& out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return false;
    struct stat link {};
    if (err == ELOOP && ::lstat(path.c_str(), &link) == 0 &&
        S_ISLNK(link.st_mode)) {
      throw Error(CKPT_ERROR_DATA_LOSS,
                  path + " is not a regular file (a symbolic link)");
    }
    throw_os_error(err, "cannot open " + path);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw_os_error(err, "cannot read " + path);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    const char* kind = S_ISDIR(st.st_mode)    ? " (a folder)"
                       : S_ISFIFO(st.st_mode) ? " (a FIFO)"
                       : S_ISSOCK(st.st_mode) ? " (a socket)"
                       : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)
                           ? " (a device)"
                           : "";
    throw Error(CKPT_ERROR_DATA_LOSS, path + " is not a regular file" + kind);
  }
  std::string content;
  // The size is only a hint: the file may change while it is read, which
  // ends at end of file.
  if (st.st_size > 0) content.reserve(static_cast<size_t>(st.st_size));
  char buffer[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      throw_os_error(err, "cannot read " + path);
    }
    if (n == 0) break;
    content.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  out = std::move(content);
  return true;
}

// Owns a file descriptor: closes it when it leaves scope, unless released.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

// Opens `relative` ('/'-separated) beneath the folder `dirfd` without
// following a symbolic link in any component; -1 with errno set on failure
// (ELOOP or ENOTDIR where a component is a link, or a file where a folder
// should be). The caller checks `relative` has no "." or ".." component.
inline int open_beneath(int dirfd, const std::string& relative, int flags) {
  size_t start = 0;
  UniqueFd held;
  int current = dirfd;
  for (;;) {
    const size_t slash = relative.find('/', start);
    if (slash == std::string::npos) {
      return ::openat(current, relative.c_str() + start,
                      flags | O_NOFOLLOW | O_CLOEXEC);
    }
    const std::string part = relative.substr(start, slash - start);
    const int next = ::openat(current, part.c_str(),
                              O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) return -1;
    held.reset(next);
    current = next;
    start = slash + 1;
  }
}

namespace detail {

// Runs `op(fd, buffer, length, offset)` (pread or pwrite) until `n` bytes
// at `offset` are done, in calls of at most 1 GiB, retrying on EINTR.
template <typename Op, typename Byte>
bool positioned_full(Op op, int fd, Byte* p, uint64_t n, uint64_t offset) {
  uint64_t done = 0;
  while (done < n) {
    const size_t chunk =
        static_cast<size_t>(n - done < (1u << 30) ? n - done : (1u << 30));
    const ssize_t got =
        op(fd, p + done, chunk, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      if (got == 0) errno = 0;
      return false;
    }
    done += static_cast<uint64_t>(got);
  }
  return true;
}

}  // namespace detail

// Writes `n` bytes of `data` at `offset` of `fd`, however many pwrite
// calls it takes. False with errno set on failure (0 when a write made no
// progress).
inline bool pwrite_full(int fd, const void* data, uint64_t n, uint64_t offset) {
  return detail::positioned_full(::pwrite, fd, static_cast<const char*>(data),
                                 n, offset);
}

// Reads `n` bytes at `offset` of `fd` into `out`, however many pread calls
// it takes. False with errno set on failure (0 at an unexpected end of
// file).
inline bool pread_full(int fd, void* out, uint64_t n, uint64_t offset) {
  return detail::positioned_full(::pread, fd, static_cast<char*>(out), n,
                                 offset);
}

}  // namespace ckpt::sdk

#endif  // CKPT_SDK_FILES_H_
