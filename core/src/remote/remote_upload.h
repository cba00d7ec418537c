// The parts of upload_checkpoint (ckpt/remote.h), for uploads shared by
// the processes of a job: each uploads its part of a checkpoint's files to
// one attempt, and one process then writes the commit record naming them
// all.
#ifndef CKPT_SRC_REMOTE_REMOTE_UPLOAD_H_
#define CKPT_SRC_REMOTE_REMOTE_UPLOAD_H_

#include <ckpt/remote.h>

#include <filesystem>
#include <string>
#include <vector>

namespace ckpt::internal {

// A local checkpoint's folders and files ('/'-separated paths relative to
// it; sizes and hashes not yet read), sorted. NotFoundError when `root` is
// no folder; InvalidArgumentError naming anything neither a folder nor a
// regular file.
struct LocalTree {
  std::vector<std::string> folders;
  std::vector<RemoteFile> files;
};
LocalTree list_local_tree(const std::filesystem::path& root);

// The attempt a job's processes upload a committed local checkpoint to,
// the same on each: named after its _CHECKPOINT_METADATA (whose commit
// time differs between saves). NotFoundError when it has none.
std::string shared_attempt_name(const std::filesystem::path& root);

// The process (of `count`) that uploads `path` of a checkpoint saved by
// many: k for a path with a component holding "process_<k>" (the files a
// process writes for itself), else `primary` (the files it writes for
// all).
int uploader_of(const std::string& path, int count, int primary);

// Uploads `files` of the checkpoint at `root` to `attempt_prefix`/,
// largest first, and returns them with their sizes and XXH3-64.
// DataLossError when one changed during the upload.
std::vector<RemoteFile> upload_files(const std::filesystem::path& root,
                                     RemoteStore& store,
                                     const std::string& attempt_prefix,
                                     std::vector<RemoteFile> files,
                                     int parallelism);

// Commits the checkpoint uploaded to `prefix`/`attempt`/ by writing its
// record (naming `folders` and `files`) if none is there, then removes
// the files of other attempts there (unfinished uploads). `source` names
// what was uploaded, for the AlreadyExistsError when one is.
void commit_remote_checkpoint(RemoteStore& store, const std::string& prefix,
                              const std::string& attempt,
                              const std::vector<std::string>& folders,
                              std::vector<RemoteFile> files,
                              const std::string& source);

// Removes the files of every attempt under `prefix` but `kept` (empty:
// all); other keys stay.
void remove_remote_attempts_but(RemoteStore& store, const std::string& prefix,
                                const std::string& kept, int parallelism);

// Removes the files of `prefix`/`attempt`/ (not its record).
void remove_remote_attempt(RemoteStore& store, const std::string& prefix,
                           const std::string& attempt, int parallelism);

}  // namespace ckpt::internal

#endif  // CKPT_SRC_REMOTE_REMOTE_UPLOAD_H_
