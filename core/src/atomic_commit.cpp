#include "atomic_commit.h"

#include <ckpt/errors.h>
#include <ckpt/sdk/files.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "layout.h"
#include "logging.h"

namespace fs = std::filesystem;

namespace ckpt::internal {

namespace {

std::string errno_text(int err) { return std::strerror(err); }

void fsync_path(const fs::path& path, bool directory) {
  int fd = ::open(path.c_str(),
                  O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) {
    throw InternalError("cannot open " + path.string() +
                        " to sync it: " + errno_text(errno));
  }
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) {
    throw InternalError("fsync of " + path.string() +
                        " failed: " + errno_text(err));
  }
}

}  // namespace

void write_file(const fs::path& path, const std::string& text, unsigned mode) {
  try {
    sdk::write_file(path.string(), text, mode);
  } catch (const sdk::Error& e) {
    throw InternalError(e.what());
  }
}

void fsync_directory(const fs::path& dir) { fsync_path(dir, true); }

void fsync_tree(const fs::path& root) {
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (entry.is_symlink()) continue;
    if (entry.is_directory()) {
      fsync_path(entry.path(), true);
    } else if (entry.is_regular_file()) {
      fsync_path(entry.path(), false);
    }
  }
  fsync_path(root, true);
}

void commit_folder(const fs::path& temporary, const fs::path& final_path,
                   bool overwrite, bool durable) {
  const fs::path parent =
      final_path.has_parent_path() ? final_path.parent_path() : fs::path(".");
  if (::renameat2(AT_FDCWD, temporary.c_str(), AT_FDCWD, final_path.c_str(),
                  RENAME_NOREPLACE) == 0) {
    if (durable) fsync_directory(parent);
    return;
  }
  int err = errno;
  if (err == EINVAL || err == ENOSYS) {
    // A file system without renameat2 flags: check, then plain rename.
    std::error_code ec;
    if (!fs::exists(final_path, ec)) {
      if (::rename(temporary.c_str(), final_path.c_str()) != 0) {
        throw InternalError("cannot rename " + temporary.string() + " to " +
                            final_path.string() + ": " + errno_text(errno));
      }
      if (durable) fsync_directory(parent);
      return;
    }
    err = EEXIST;
  }
  if (err != EEXIST && err != ENOTEMPTY) {
    throw InternalError("cannot rename " + temporary.string() + " to " +
                        final_path.string() + ": " + errno_text(err));
  }
  if (!overwrite) {
    throw AlreadyExistsError("Destination " + final_path.string() +
                             " already exists (saved by another writer "
                             "meanwhile); pass overwrite to replace it");
  }
  if (::renameat2(AT_FDCWD, temporary.c_str(), AT_FDCWD, final_path.c_str(),
                  RENAME_EXCHANGE) == 0) {
    // `temporary` now holds the old checkpoint.
    if (durable) fsync_directory(parent);
    remove_quietly(temporary);
    return;
  }
  err = errno;
  if (err != EINVAL && err != ENOSYS) {
    throw InternalError("cannot exchange " + temporary.string() + " with " +
                        final_path.string() + ": " + errno_text(err));
  }
  // No RENAME_EXCHANGE: move the old one aside first. A crash in between
  // leaves both, complete, under temporary names.
  fs::path aside = temporary_path_for(final_path);
  if (::rename(final_path.c_str(), aside.c_str()) != 0 ||
      ::rename(temporary.c_str(), final_path.c_str()) != 0) {
    throw InternalError("cannot replace " + final_path.string() + ": " +
                        errno_text(errno));
  }
  if (durable) fsync_directory(parent);
  remove_quietly(aside);
}

void remove_quietly(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) {
    log(CKPT_LOG_WARNING,
        "could not remove " + path.string() + ": " + ec.message());
  }
}

}  // namespace ckpt::internal
