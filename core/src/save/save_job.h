// One save from its blocking tiers to its commit (the job), and the saves
// in flight in this process (the registry a second save to one path, the
// caller's wait_for_pending_saves and the wait at exit consult).
//
// A job's life: begin_save (the final path is taken); the blocking tiers
// (run_and_commit); then the job is tracked while its temporary folder
// exists. The caller learns the outcome once (report): the commit, a
// background error, or TimeoutError past the deadline. A save that timed
// out leaves its background tiers running and its temporary folder in place
// until they end, or until the process exits (wait_at_exit).
#ifndef CKPT_SRC_SAVE_SAVE_JOB_H_
#define CKPT_SRC_SAVE_SAVE_JOB_H_

#include <ckpt/checkpoint.h>
#include <ckpt/context.h>
#include <ckpt/multiprocess.h>

#include <chrono>
#include <condition_variable>
#include <exception>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "save/atomic_commit.h"
#include "save/save_inputs.h"
#include "value/value_bridge.h"

namespace ckpt {

// What an AsyncSave waits on.
struct AsyncSave::State {
  std::filesystem::path path;
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
  std::exception_ptr error;
};

namespace internal {

using Clock = std::chrono::steady_clock;

// `timeout` from now; at most about a century, so that no clock
// arithmetic (ours or the standard library's waits) overflows.
Clock::time_point deadline_after(std::chrono::milliseconds timeout);

// One save (see the top of this file).
struct SaveJob {
  std::filesystem::path final_path;
  std::unique_ptr<internal::TemporaryCheckpoint> temporary;
  bool overwrite = false;
  bool durable = true;
  unsigned file_mode = 0644;
  // The caller blocks until the outcome (the synchronous calls).
  bool caller_waits = false;
  Clock::time_point deadline;
  std::chrono::milliseconds timeout{0};
  // Per checkpointable whose blocking tier started: its name, handler,
  // call, background tier, and whether the save may end while that tier still
  // runs (may_leave_running).
  std::vector<std::string> names;
  std::vector<HandlerPtr> handlers;
  std::vector<CallContext> calls;  // what each save was called with
  std::vector<std::future<void>> futures;
  std::vector<bool> may_leave_running;
  // The values the save made or changed (SaveItems::owned), kept until
  // every background tier is over.
  Checkpointables owned_items;
  CheckpointInfo info;
  std::function<void(std::exception_ptr)> on_complete;
  std::shared_ptr<AsyncSave::State> state;
  // A multi-process save (null: one process): the processes agree on the
  // outcome, and the primary host commits (collective_steps.h).
  std::shared_ptr<Collectives> collectives;
  int primary_host = 0;
  // Guarded by pending().mutex.
  bool reported = false;  // the caller has the outcome; the path is free
  bool claimed = false;   // the temporary folder is being committed or
                          // discarded, by finish/clean-up or by exit
};

// Saves in flight in this process.
struct PendingSaves {
  std::mutex mutex;
  std::condition_variable cv;
  // The final paths of saves whose outcome is not reported yet: another
  // save to one of them is refused.
  std::set<std::filesystem::path> paths;
  size_t unreported = 0;
  // Every save whose temporary folder is still there (its background tiers
  // may run), reported or not: what the process waits for at exit.
  std::vector<std::shared_ptr<SaveJob>> jobs;
};

PendingSaves& pending();

// Takes `final_path` for a new save: AlreadyExistsError while a save to it
// is in flight. The first call registers wait_at_exit.
void begin_save(const std::filesystem::path& final_path);

// Gives the caller the outcome, once: frees the final path, wakes
// result() and wait_for_pending_saves(), then calls on_complete (when
// `notify`; not for a save whose caller got the error from the call).
void report(SaveJob& job, std::exception_ptr error, bool notify);

// The checkpointables of `job` whose background tier is still running.
std::vector<size_t> still_running(const SaveJob& job);
// "checkpointable 'x' (handler T from F), ..." for `running`.
std::string list_running(const SaveJob& job,
                         const std::vector<size_t>& running);
std::string temporary_folder_of(const SaveJob& job);

// The job of a save of `items` (items_to_save, shards placed), its
// handlers resolved. `views` receives the C views of the items, which
// resolution and the saves share.
std::shared_ptr<SaveJob> prepare_job(
    const std::filesystem::path& path, const SaveOptions& options,
    const Context& context, bool caller_waits, const SaveItems& items,
    std::vector<std::unique_ptr<SharedCValueView>>& views);

// Runs the blocking tiers of a job whose temporary folder exists, then
// hands it to its commit: on this thread for a caller that waits, else on
// the pool.
AsyncSave run_and_commit(const std::shared_ptr<SaveJob>& job,
                         const Context& context, SaveItems& items,
                         std::vector<std::unique_ptr<SharedCValueView>>& views);

// After a blocking tier (or the making of the temporary folder) failed:
// the background tiers already started write into the temporary folder, so
// it goes once they end. Returns the error to throw: `error`, or in a
// multi-process save the one the processes agreed on.
std::exception_ptr abandon_after_blocking_failure(
    const std::shared_ptr<SaveJob>& job, std::exception_ptr error);

// At exit (atexit, registered by the first save; exit_wait.cpp): waits for
// the saves in flight until their deadlines (or CKPT_EXIT_TIMEOUT_SECONDS),
// then gives up on the rest, naming each.
void wait_at_exit();

}  // namespace internal
}  // namespace ckpt

#endif  // CKPT_SRC_SAVE_SAVE_JOB_H_
