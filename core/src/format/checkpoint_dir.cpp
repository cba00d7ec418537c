#include "format/checkpoint_dir.h"

#include <ckpt/errors.h>
#include <ckpt/sdk/files.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace fs = std::filesystem;

namespace ckpt::internal {

CheckpointDir::CheckpointDir(const fs::path& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd_ < 0) {
    const int err = errno;
    if (err == ENOENT) {
      throw NotFoundError("checkpoint " + path.string() + " does not exist");
    }
    if (err == ENOTDIR) {
      throw InvalidLayoutError("invalid checkpoint " + path.string() +
                               ": it is not a folder");
    }
    throw_os_error(err, "cannot open checkpoint " + path.string());
  }
  // /proc/self/fd/<fd> names this very folder; without a usable /proc,
  // handlers get the path itself.
  root_ = fs::path("/proc/self/fd") / std::to_string(fd_);
  struct stat a, b;
  if (::fstat(fd_, &a) != 0 || ::stat(root_.c_str(), &b) != 0 ||
      a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
    root_ = path_;
  }
}

CheckpointDir::~CheckpointDir() {
  if (fd_ >= 0) ::close(fd_);
}

std::optional<std::string> CheckpointDir::read_file(const std::string& relative,
                                                    size_t limit) const {
  const std::string shown = (path_ / relative).string();
  int fd = ckpt::sdk::open_beneath(fd_, relative, O_RDONLY | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return std::nullopt;
    if (err == ELOOP || err == ENOTDIR) {
      throw DataLossError(shown +
                          " is a symbolic link or under one; a "
                          "checkpoint holds only folders and files");
    }
    throw_os_error(err, "cannot open " + shown);
  }
  ckpt::sdk::UniqueFd closer(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) throw_os_error(errno, "cannot stat " + shown);
  if (!S_ISREG(st.st_mode)) {
    throw DataLossError(shown + " is not a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) > limit) {
    throw DataLossError(shown + " is " + std::to_string(st.st_size) +
                        " bytes, more than such a file can be (" +
                        std::to_string(limit) + ")");
  }
  std::string out;
  out.reserve(static_cast<size_t>(st.st_size));
  char buffer[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_os_error(errno, "cannot read " + shown);
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > limit) {
      throw DataLossError(shown + " grew past " + std::to_string(limit) +
                          " bytes while being read");
    }
    out.append(buffer, static_cast<size_t>(n));
  }
  return out;
}

bool CheckpointDir::deleted() const {
  struct stat opened, now;
  if (::fstat(fd_, &opened) != 0) return false;
  if (opened.st_nlink == 0) return true;
  // Replaced: the path now names another folder (or none).
  return ::stat(path_.c_str(), &now) != 0 || now.st_dev != opened.st_dev ||
         now.st_ino != opened.st_ino;
}

std::string CheckpointDir::shown(const std::string& message) const {
  const std::string from = root_.string(), to = path_.string();
  if (from == to) return message;
  std::string out;
  size_t start = 0;
  for (;;) {
    size_t at = message.find(from, start);
    if (at == std::string::npos) break;
    // Only the whole descriptor number: /proc/self/fd/1 is not .../fd/12.
    const size_t after = at + from.size();
    if (after < message.size() && message[after] >= '0' &&
        message[after] <= '9') {
      out += message.substr(start, after - start);
      start = after;
      continue;
    }
    out += message.substr(start, at - start) + to;
    start = after;
  }
  return out + message.substr(start);
}

}  // namespace ckpt::internal
