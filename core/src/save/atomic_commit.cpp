#include "save/atomic_commit.h"

#include <ckpt/errors.h>
#include <ckpt/sdk/files.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "format/checkpoint_metadata.h"
#include "format/checksums.h"
#include "format/names.h"
#include "save/save_owner.h"
#include "util/error_conversion.h"
#include "util/logging.h"

namespace fs = std::filesystem;

namespace ckpt::internal {

namespace {

void fsync_path(const fs::path& path, bool directory) {
  int fd = ::open(path.c_str(),
                  O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0)
    throw_os_error(errno, "cannot open " + path.string() + " to sync it");
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) throw_os_error(err, "cannot sync " + path.string());
}

// After a rename the checkpoint is in place whatever happens next: a
// failure to make the rename durable is logged, not reported as a failed
// save (which would also discard what the rename moved aside).
void sync_after_rename(const fs::path& parent) {
  try {
    fsync_directory(parent);
  } catch (const Error& e) {
    log(CKPT_LOG_ERROR, std::string("checkpoint committed, but ") + e.what());
  }
}

}  // namespace

void write_file(const fs::path& path, const std::string& text, unsigned mode) {
  with_errors_converted([&] { sdk::write_file(path.string(), text, mode); });
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
    if (durable) sync_after_rename(parent);
    return;
  }
  int err = errno;
  if (err == EINVAL || err == ENOSYS) {
    // A file system without renameat2 flags: check, then plain rename.
    std::error_code ec;
    if (!fs::exists(final_path, ec)) {
      if (::rename(temporary.c_str(), final_path.c_str()) != 0) {
        throw_os_error(errno, "cannot rename " + temporary.string() + " to " +
                                  final_path.string());
      }
      if (durable) sync_after_rename(parent);
      return;
    }
    err = EEXIST;
  }
  if (err != EEXIST && err != ENOTEMPTY) {
    throw_os_error(err, "cannot rename " + temporary.string() + " to " +
                            final_path.string());
  }
  if (!overwrite) {
    throw AlreadyExistsError("Destination " + final_path.string() +
                             " already exists (saved by another writer "
                             "meanwhile); pass overwrite to replace it");
  }
  check_replaceable(final_path);
  if (::renameat2(AT_FDCWD, temporary.c_str(), AT_FDCWD, final_path.c_str(),
                  RENAME_EXCHANGE) == 0) {
    // `temporary` now holds the old checkpoint.
    if (durable) sync_after_rename(parent);
    remove_quietly(temporary);
    return;
  }
  err = errno;
  if (err != EINVAL && err != ENOSYS) {
    throw_os_error(err, "cannot exchange " + temporary.string() + " with " +
                            final_path.string());
  }
  // No RENAME_EXCHANGE: move the old one aside first. A crash in between
  // leaves both, complete, under temporary names.
  fs::path aside = temporary_path_for(final_path);
  if (::rename(final_path.c_str(), aside.c_str()) != 0 ||
      ::rename(temporary.c_str(), final_path.c_str()) != 0) {
    throw_os_error(errno, "cannot replace " + final_path.string());
  }
  if (durable) sync_after_rename(parent);
  remove_quietly(aside);
}

void check_replaceable(const fs::path& final_path) {
  struct stat st;
  if (::lstat(final_path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    throw_os_error(errno, "cannot inspect " + final_path.string());
  }
  auto refuse = [&](const std::string& why) {
    throw AlreadyExistsError("cannot overwrite " + final_path.string() + ": " +
                             why);
  };
  if (S_ISLNK(st.st_mode)) {
    refuse(
        "it is a symbolic link, which ckpt never replaces (save to the "
        "path it points to, or remove the link)");
  }
  if (!S_ISDIR(st.st_mode)) {
    refuse(
        "it is a file, not a checkpoint; overwrite replaces only "
        "checkpoints and empty folders");
  }
  for (const char* marker :
       {kCheckpointMetadataFile, kMarkerFile, kPytreeMetadataFile}) {
    struct stat m;
    if (::lstat((final_path / marker).c_str(), &m) == 0) return;
  }
  std::error_code ec;
  if (fs::is_empty(final_path, ec) && !ec) return;
  refuse("it is a folder that holds no checkpoint (no " +
         std::string(kCheckpointMetadataFile) +
         "); overwrite replaces only checkpoints and empty folders, so that a "
         "mistyped path never deletes other files");
}

void remove_quietly(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) {
    log(CKPT_LOG_WARNING,
        "could not remove " + path.string() + ": " + ec.message());
  }
}

TemporaryCheckpoint::TemporaryCheckpoint(fs::path final_path,
                                         unsigned directory_mode)
    : final_path_(std::move(final_path)), directory_mode_(directory_mode) {
  with_errors_converted([&] {
    fs::create_directories(final_path_.parent_path());
    fs::path folder = temporary_path_for(final_path_);
    fs::create_directory(folder);
    try {
      fs::permissions(folder, static_cast<fs::perms>(directory_mode_));
      // Who writes it, so that a later process can remove the folder if
      // this one dies (save_owner.h).
      write_file(folder / kOwnerFile, owner_record_text(this_owner()), 0644);
    } catch (...) {
      remove_quietly(folder);
      throw;
    }
    folder_ = folder;
  });
}

std::unique_ptr<TemporaryCheckpoint> TemporaryCheckpoint::attach(
    fs::path final_path, fs::path folder, unsigned directory_mode) {
  std::unique_ptr<TemporaryCheckpoint> t(new TemporaryCheckpoint());
  t->final_path_ = std::move(final_path);
  t->folder_ = std::move(folder);
  t->directory_mode_ = directory_mode;
  t->owner_ = false;
  return t;
}

TemporaryCheckpoint::~TemporaryCheckpoint() { discard(); }

fs::path TemporaryCheckpoint::add_folder(const std::string& name,
                                         const SelfCheckedFiles& self_checked) {
  if (!self_checked.names.empty() || !self_checked.prefixes.empty()) {
    self_checked_[name] = self_checked;
  }
  fs::path dir = folder_ / name;
  with_errors_converted([&] {
    fs::create_directory(dir);
    fs::permissions(dir, static_cast<fs::perms>(directory_mode_));
  });
  return dir;
}

void TemporaryCheckpoint::commit(const CheckpointInfo& info, unsigned file_mode,
                                 bool overwrite, bool durable) {
  if (!owner_) {
    throw InternalError("cannot commit " + folder_.string() +
                        ": this process did not make it (another process "
                        "commits it)");
  }
  try {
    // The owner record is no part of the checkpoint. Should the process
    // die from here on, the folder's name still says whose it was.
    with_errors_converted([&] { fs::remove(folder_ / kOwnerFile); });
    write_file(folder_ / kCheckpointMetadataFile,
               checkpoint_metadata_json(info), file_mode);
    write_file(folder_ / kMarkerFile, "", file_mode);
    write_file(
        folder_ / kCommitSuccessFile,
        "Checkpoint commit was successful to " + final_path_.string() + "\n",
        file_mode);
    // Last: the record of every file written before it.
    const std::string checksums = with_errors_converted([&] {
      return checksums_text(record_checksums(folder_, self_checked_));
    });
    write_file(folder_ / kChecksumsFile, checksums, file_mode);
    if (durable) with_errors_converted([&] { fsync_tree(folder_); });
    commit_folder(folder_, final_path_, overwrite, durable);
    done_ = true;
  } catch (...) {
    discard();
    throw;
  }
}

void TemporaryCheckpoint::discard() {
  if (done_ || folder_.empty()) return;
  done_ = true;
  if (owner_) remove_quietly(folder_);
}

}  // namespace ckpt::internal
