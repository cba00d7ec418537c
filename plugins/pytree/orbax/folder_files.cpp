#include "orbax/folder_files.h"

#include <ckpt/abi.h>
#include <ckpt/sdk/error.h>
#include <ckpt/sdk/files.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace ckpt::pytree::orbax {

namespace {

using ckpt::sdk::Error;

constexpr size_t kMaxPathLength = 65535;

std::string range_text(uint64_t offset, uint64_t length) {
  return "bytes [" + std::to_string(offset) + ", " +
         std::to_string(offset + length) + ")";
}

}  // namespace

bool is_safe_relative_path(std::string_view path) {
  if (path.empty() || path.size() > kMaxPathLength) return false;
  if (path.find('\0') != std::string_view::npos) return false;
  size_t start = 0;
  for (;;) {
    const size_t end = path.find('/', start);
    const std::string_view part = end == std::string_view::npos
                                      ? path.substr(start)
                                      : path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (end == std::string_view::npos) return true;
    start = end + 1;
  }
}

FolderFiles::FolderFiles(const std::string& folder, std::string what)
    : folder_(folder), what_(std::move(what)) {
  // The folder itself is the one the core hands the handler (it may be a
  // /proc/self/fd link pinning it); only what is below it is never
  // reached through a link.
  folder_fd_ = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (folder_fd_ < 0) {
    ckpt::sdk::throw_os_error(errno, what_ + ": cannot open " + folder);
  }
}

FolderFiles::~FolderFiles() {
  for (auto& [path, f] : files_) ::close(f->fd);
  if (folder_fd_ >= 0) ::close(folder_fd_);
}

std::string FolderFiles::shown(const std::string& path) const {
  return ckpt::sdk::join_path(folder_, path);
}

const FolderFiles::File* FolderFiles::open(const std::string& path) const {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = files_.find(path);
    if (it != files_.end()) return it->second.get();
  }
  if (!is_safe_relative_path(path)) {
    throw Error(CKPT_ERROR_DATA_LOSS, what_ + ": a file outside " + folder_ +
                                          " is named (\"" +
                                          path.substr(0, 200) + "\")");
  }
  auto fail = [&](int err) -> const File* {
    if (err == ENOENT) return nullptr;
    if (err == ELOOP || err == ENOTDIR) {
      throw Error(CKPT_ERROR_DATA_LOSS,
                  what_ + ": " + shown(path) +
                      " is not a regular file in a folder (a symbolic link, "
                      "or a file where a folder should be)");
    }
    ckpt::sdk::throw_os_error(err, what_ + ": cannot open " + shown(path));
  };
  ckpt::sdk::UniqueFd fd(
      ckpt::sdk::open_beneath(folder_fd_, path, O_RDONLY | O_NONBLOCK));
  if (fd.get() < 0) return fail(errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail(errno);
  if (!S_ISREG(st.st_mode)) {
    throw Error(CKPT_ERROR_DATA_LOSS,
                what_ + ": " + shown(path) + " is not a regular file");
  }
  auto f = std::make_unique<File>();
  f->fd = fd.release();
  f->size = static_cast<uint64_t>(st.st_size);
  std::lock_guard<std::mutex> lock(mutex_);
  auto [it, fresh] = files_.try_emplace(path, std::move(f));
  if (!fresh) ::close(f->fd);  // another thread opened it meanwhile
  return it->second.get();
}

std::optional<uint64_t> FolderFiles::size_if_exists(
    const std::string& path) const {
  const File* f = open(path);
  if (!f) return std::nullopt;
  return f->size;
}

uint64_t FolderFiles::size(const std::string& path,
                           const std::string& role) const {
  const File* f = open(path);
  if (!f) {
    throw Error(CKPT_ERROR_DATA_LOSS,
                what_ + ": " + shown(path) + " is missing (" + role + ")");
  }
  return f->size;
}

void FolderFiles::read(const std::string& path, uint64_t offset,
                       uint64_t length, const std::string& role,
                       const char* kind, void* out) const {
  const File* f = open(path);
  if (!f) {
    throw Error(CKPT_ERROR_DATA_LOSS,
                what_ + ": " + shown(path) + " is missing (" + role + ")");
  }
  if (offset > f->size || length > f->size - offset) {
    throw Error(CKPT_ERROR_DATA_LOSS,
                what_ + ": " + shown(path) + " is damaged (the " + kind +
                    " at " + range_text(offset, length) + " lies beyond its " +
                    std::to_string(f->size) + " bytes)");
  }
  if (!ckpt::sdk::pread_full(f->fd, out, length, offset)) {
    if (errno != 0) {
      ckpt::sdk::throw_os_error(errno, what_ + ": cannot read " + shown(path));
    }
    throw Error(CKPT_ERROR_DATA_LOSS,
                what_ + ": " + shown(path) +
                    " is damaged (it became shorter while being read)");
  }
}

std::string FolderFiles::read(const std::string& path, uint64_t offset,
                              uint64_t length, const std::string& role,
                              const char* kind) const {
  const uint64_t size = this->size(path, role);
  if (offset > size || length > size - offset) {
    read(path, offset, length, role, kind, nullptr);  // throws, naming it
  }
  std::string out(static_cast<size_t>(length), '\0');
  read(path, offset, length, role, kind, out.data());
  return out;
}

}  // namespace ckpt::pytree::orbax
