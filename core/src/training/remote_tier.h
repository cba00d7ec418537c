// The remote tier of a Checkpointer (ckpt/checkpointer.h,
// RemoteTierOptions): the steps committed in the store, and the background
// uploader that persists local steps and prunes remote ones, in order.
#ifndef CKPT_SRC_TRAINING_REMOTE_TIER_H_
#define CKPT_SRC_TRAINING_REMOTE_TIER_H_

#include <ckpt/checkpointer.h>
#include <ckpt/remote.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <filesystem>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace ckpt::internal {

class RemoteTier {
 public:
  // Called on the uploader's thread once `step` is persisted.
  using Persisted = std::function<void(int64_t step)>;
  RemoteTier(RemoteTierOptions options, StepNameFormat format,
             Persisted on_persisted);
  // Stops after the work queued (errors are logged).
  ~RemoteTier();
  RemoteTier(const RemoteTier&) = delete;
  RemoteTier& operator=(const RemoteTier&) = delete;

  const std::string& url() const { return url_; }

  // The steps committed in the store (one listing), ascending, each with
  // its commit time there (local: false, remote: true).
  std::vector<CheckpointStep> list(const std::filesystem::path& root) const;

  // Queues the upload of committed local step `step` at `folder` (first
  // removing a remote step of that number when `replace`). Waits while
  // max_pending_uploads uploads are queued, unless `no_wait`.
  void upload(int64_t step, const std::filesystem::path& folder, bool replace,
              bool no_wait = false);
  // Queues the removal of remote step `step`.
  void remove(int64_t step);
  // Waits for everything queued; rethrows the first failure since the last
  // call.
  void finish();
  // Downloads remote step `step` into `into` (which must not exist):
  // `only` as download_checkpoint's.
  void download(int64_t step, const std::filesystem::path& into,
                const std::vector<std::string>& only) const;

 private:
  struct Task {
    enum class Kind { kUpload, kRemove } kind;
    int64_t step;
    std::filesystem::path folder;
    bool replace = false;
  };
  void run();
  void perform(const Task& task);

  RemoteTierOptions options_;
  StepNameFormat format_;
  Persisted on_persisted_;
  std::string url_;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Task> queue_;
  size_t uploads_queued_ = 0;
  bool busy_ = false;
  bool stop_ = false;
  std::exception_ptr error_;
  std::thread worker_;
};

// Adds the steps of `remote` (RemoteTier::list) to `steps` (ascending):
// a step in both is marked remote, one only in the store is added. Returns
// the steps of `remote`.
std::set<int64_t> merge_remote_steps(std::vector<CheckpointStep>& steps,
                                     std::vector<CheckpointStep> remote);

// The folder a load of a step reads: its local copy, or for a step only
// in the remote store a download of the entries `only` names (all when
// empty, or when the step lacks one) into a temporary folder of the root,
// removed again at scope end.
class StepCopy {
 public:
  StepCopy(RemoteTier* remote, const CheckpointStep& c,
           const std::vector<std::string>& only);
  ~StepCopy();
  StepCopy(const StepCopy&) = delete;
  StepCopy& operator=(const StepCopy&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::filesystem::path temp_;
};

}  // namespace ckpt::internal

#endif  // CKPT_SRC_TRAINING_REMOTE_TIER_H_
