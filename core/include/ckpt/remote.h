// ckpt/remote.h -- checkpoints in object storage.
//
//   auto store = ckpt::s3_store("s3://bucket/runs/a");   // ckpt/s3.h
//   ckpt::upload_checkpoint("/ckpt/step_10", *store, "step_10");
//   ckpt::download_checkpoint(*store, "step_10", "/scratch/step_10");
//
// ckpt reaches object storage through a RemoteStore: six operations any
// store offers (S3 and its kin, GCS, a host's own). libckpt links no HTTP
// library: ckpt-s3 (ckpt/s3.h) implements RemoteStore over S3's protocol,
// directory_store() over a local or mounted folder, and a host with other
// storage implements the operations itself.
//
// A checkpoint in a store is a prefix P holding its files under
// P/<attempt>/ and, written last and only if absent, its commit record
// P/_CKPT_REMOTE (every file's path, size and XXH3-64, and the attempt's
// name). A reader sees a checkpoint whole or not at all: without the
// record there is none, and the record names only files uploaded before
// it. Two writers of one prefix upload to attempts of their own; one
// writes the record, the other gets AlreadyExistsError and removes its
// attempt.
#ifndef CKPT_REMOTE_H_
#define CKPT_REMOTE_H_

#include <ckpt/export.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ckpt {

struct CKPT_API RemoteObject {
  std::string key;
  int64_t size = 0;
};

// The operations ckpt needs of an object store. Keys are relative to the
// store's root, '/'-separated ("step_10/_CKPT_REMOTE"). ckpt calls the
// operations from many threads at once. A failure throws ckpt::Error:
// NotFoundError for a missing key, PermissionDeniedError for refused
// credentials, IOError naming the key once retries are spent.
class CKPT_API RemoteStore {
 public:
  virtual ~RemoteStore() = default;

  // The store's root for messages, e.g. "s3://bucket/prefix".
  virtual std::string url() const = 0;

  // Writes the file at `local_path` to `key`, replacing any object there.
  virtual void put_file(const std::string& key,
                        const std::string& local_path) = 0;
  // Writes `bytes` to `key` only if no object is there: false (nothing
  // written) if one is. Atomic: of two callers, one gets true.
  virtual bool put_if_absent(const std::string& key,
                             const std::string& bytes) = 0;
  // The bytes [offset, offset + length) of the object, fewer where it ends
  // first (length < 0: to its end); an offset past its end is
  // InvalidArgumentError.
  virtual std::string get(const std::string& key, int64_t offset = 0,
                          int64_t length = -1) = 0;
  // Writes the object to a new file at `local_path` (replacing one there).
  virtual void get_file(const std::string& key,
                        const std::string& local_path) = 0;
  // Every object whose key starts with `prefix`, sorted by key.
  virtual std::vector<RemoteObject> list(const std::string& prefix) = 0;
  // Removes the object; a missing one is no error.
  virtual void remove(const std::string& key) = 0;
};

// A store over a folder of this machine (made if missing): a key is a file
// below it. Keys with empty, "." or ".." components are
// InvalidArgumentError.
CKPT_API std::shared_ptr<RemoteStore> directory_store(const std::string& root);

// The name of a checkpoint's commit record under its prefix.
inline constexpr const char* kRemoteCommitRecord = "_CKPT_REMOTE";

struct CKPT_API RemoteCopyOptions {
  // Files copied at once.
  int parallelism = 8;
};

// One file of a checkpoint in a store.
struct CKPT_API RemoteFile {
  std::string path;  // relative to the checkpoint, '/'-separated
  int64_t size = 0;
  uint64_t xxh3 = 0;
};

// A committed checkpoint in a store: its files, read from the commit
// record. NotFoundError when `prefix` holds no committed checkpoint;
// DataLossError naming the record when it is damaged.
struct CKPT_API RemoteCheckpoint {
  std::string prefix;
  std::string attempt;
  std::vector<RemoteFile> files;
  // The key of a file (of `files`) in the store.
  std::string key_of(const std::string& path) const;
};
CKPT_API RemoteCheckpoint open_remote_checkpoint(RemoteStore& store,
                                                 const std::string& prefix);

// The names of the checkpoints committed directly below the store's root
// (each a prefix holding a commit record), sorted; other keys are passed
// over.
CKPT_API std::vector<std::string> list_remote_checkpoints(RemoteStore& store);

// Uploads the committed checkpoint at `local_dir` to `prefix`, then
// commits it there. AlreadyExistsError when a checkpoint is already
// committed at `prefix` (this upload's files are then removed).
CKPT_API void upload_checkpoint(const std::string& local_dir,
                                RemoteStore& store, const std::string& prefix,
                                const RemoteCopyOptions& options = {});

// Downloads the checkpoint committed at `prefix` into `local_dir` (which
// must not exist: it appears whole, by a rename, or not at all), checking
// every byte against the commit record (DataLossError naming the file).
// `only`, when not empty, names the top-level entries (checkpointable
// folders, files) to fetch; the checkpoint's own files always come.
CKPT_API void download_checkpoint(RemoteStore& store, const std::string& prefix,
                                  const std::string& local_dir,
                                  const std::vector<std::string>& only = {},
                                  const RemoteCopyOptions& options = {});

// Removes every object under `prefix` + "/", the commit record first, so
// that a reader never sees a committed checkpoint with files missing.
CKPT_API void remove_remote_checkpoint(RemoteStore& store,
                                       const std::string& prefix);

}  // namespace ckpt

#endif  // CKPT_REMOTE_H_
