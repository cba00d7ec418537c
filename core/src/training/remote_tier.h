// The remote tier of a Checkpointer (ckpt/checkpointer.h,
// RemoteTierOptions): the steps committed in the store, and the background
// uploader that persists local steps and prunes remote ones, in order.
//
// In a job of many processes every process uploads its part of each step
// (uploader_of: the files it wrote for itself; the primary also those it
// wrote for all) to an attempt they agree on without talking
// (shared_attempt_name). Their reports of what they uploaded travel with
// the Checkpointer's collectives (report() and absorb(), on the thread
// that drives it, where every process calls them in the same order), and
// the primary commits a step once every process's part is up; only the
// primary writes records and removes anything from the store.
#ifndef CKPT_SRC_TRAINING_REMOTE_TIER_H_
#define CKPT_SRC_TRAINING_REMOTE_TIER_H_

#include <ckpt/checkpointer.h>
#include <ckpt/multiprocess.h>
#include <ckpt/remote.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace ckpt::internal {

// This process's place in its job.
struct TierProcess {
  int index = 0;
  int count = 1;
  int primary = 0;
};

class RemoteTier {
 public:
  // Called on the uploader's thread once `step` is persisted.
  using Persisted = std::function<void(int64_t step)>;
  RemoteTier(RemoteTierOptions options, StepNameFormat format,
             TierProcess process, Persisted on_persisted);
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
  // Queues the removal of remote step `step` (in a job of many processes:
  // on the primary; a step whose parts are still being uploaded is removed
  // once they are).
  void remove(int64_t step);
  // Waits for everything queued; rethrows the first failure since the last
  // call.
  void finish();
  // Waits for everything queued.
  void drain();

  // Jobs of many processes. What this process uploaded since its last
  // report, for the others.
  std::string report();
  // Takes every process's report (by process index): the primary queues
  // the commit of each step whose parts are all up (or the removal of its
  // attempt, when one failed or the step was pruned meanwhile). Returns
  // the steps now persisted, on the processes other than the primary
  // (where the commit itself calls on_persisted).
  std::vector<int64_t> absorb(const std::vector<std::string>& reports);
  // finish() for a job of many processes, on every process: once every
  // process's parts are up, the primary commits the steps whose parts all
  // are, and every process learns how that went (the primary's error,
  // rethrown). Returns the steps persisted as absorb().
  std::vector<int64_t> finish_job(Collectives& collectives,
                                  const std::filesystem::path& root);
  // Downloads remote step `step` into `into` (which must not exist):
  // `only` as download_checkpoint's.
  void download(int64_t step, const std::filesystem::path& into,
                const std::vector<std::string>& only) const;

 private:
  struct Task {
    enum class Kind { kUpload, kRemove, kCommit, kAbort } kind;
    int64_t step;
    std::filesystem::path folder;
    bool replace = false;
    // kCommit and kAbort.
    std::string attempt;
    std::vector<std::string> folders;
    std::vector<RemoteFile> files;
  };
  // One process's part of a step (jobs of many processes).
  struct Part {
    int64_t step = 0;
    std::string attempt;
    std::vector<RemoteFile> files;
    std::vector<std::string> folders;    // the primary's only: all of them
    std::vector<std::string> all_paths;  // the primary's only: every file
    std::string error;                   // empty: uploaded
  };
  // A step some process still uploads (jobs of many processes).
  struct Pending {
    bool replace = false;
    bool pruned = false;
    std::map<int, Part> parts;  // by process
  };
  bool many() const { return process_.count > 1; }
  void run();
  void perform(const Task& task);
  void upload_part(const Task& task);
  void commit(const Task& task);
  void fail(const Task& task, const std::string& what);
  // Whether an upload of `step` is queued behind the running one.
  bool saved_again(int64_t step);
  // Queues the commit or the removal of a step whose parts are all in.
  void settle(int64_t step, Pending pending, std::vector<int64_t>& persisted);

  RemoteTierOptions options_;
  StepNameFormat format_;
  TierProcess process_;
  Persisted on_persisted_;
  std::string url_;
  // Used by the thread that drives the Checkpointer only.
  std::map<int64_t, Pending> pending_;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Task> queue_;
  size_t uploads_queued_ = 0;
  // Uploads queued or running, by step: a step saved again (overwrite)
  // while its upload waits or runs has two.
  std::map<int64_t, int> uploads_of_step_;
  bool busy_ = false;
  bool stop_ = false;
  std::exception_ptr error_;
  std::vector<Part> finished_;  // parts uploaded since the last report
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
