// Saving checkpoints: the blocking tiers on the caller's thread, then the
// commit once every background tier is done (checkpoint.h).
#include <ckpt/checkpoint.h>
#include <ckpt/context.h>
#include <ckpt/errors.h>
#include <ckpt/registry.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "handlers/context.h"
#include "load/open_checkpoint.h"
#include "multiprocess/collective_steps.h"
#include "multiprocess/sharding.h"
#include "plugin_host/plugin_handler.h"
#include "plugin_host/startup.h"
#include "save/atomic_commit.h"
#include "util/async_engine.h"
#include "util/error_conversion.h"
#include "util/logging.h"
#include "value/value_bridge.h"

namespace fs = std::filesystem;

namespace ckpt {

struct AsyncSave::State {
  fs::path path;
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
  std::exception_ptr error;
};

namespace {

using Clock = std::chrono::steady_clock;

int64_t now_nsecs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

fs::path normalized(const fs::path& path) {
  if (path.empty()) throw InvalidArgumentError("the checkpoint path is empty");
  fs::path p = fs::absolute(path).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();  // trailing slash
  return p;
}

// `timeout` from now; at most about a century, so that no clock
// arithmetic (ours or the standard library's waits) overflows.
Clock::time_point deadline_after(std::chrono::milliseconds timeout) {
  constexpr std::chrono::hours kCentury(24 * 365 * 100);
  const Clock::time_point now = Clock::now();
  if (timeout.count() <= 0) return now;
  if (timeout >= kCentury) return now + kCentury;
  return now + timeout;
}

// One save from its blocking tiers to its commit.
//
// Its life: begin_save (the final path is taken); the blocking tiers; then
// the job is tracked (pending().jobs) while its temporary folder exists.
// The caller learns the outcome once (report): the commit, a background
// error, or TimeoutError past the deadline. A save that timed out leaves
// its background tiers running and its temporary folder in place until
// they end (clean_up_when_over), or until the process exits (wait_at_exit).
struct SaveJob {
  fs::path final_path;
  std::unique_ptr<internal::TemporaryCheckpoint> temporary;
  bool overwrite = false;
  bool durable = true;
  unsigned file_mode = 0644;
  // The caller blocks until the outcome (the synchronous calls).
  bool caller_waits = false;
  Clock::time_point deadline;
  std::chrono::milliseconds timeout{0};
  // Per checkpointable whose blocking tier started: its name, handler,
  // background tier, and whether the save may end while that tier still
  // runs (may_leave_running).
  std::vector<std::string> names;
  std::vector<HandlerPtr> handlers;
  std::vector<std::future<void>> futures;
  std::vector<bool> may_leave_running;
  // The values the save made or changed (SaveItems::owned), kept until
  // every background tier is over.
  Checkpointables owned_items;
  CheckpointInfo info;
  std::function<void(std::exception_ptr)> on_complete;
  std::shared_ptr<AsyncSave::State> state;
  // A multi-process save (null: one process): the processes agree on the
  // outcome, and the primary host commits (multiprocess_save.h).
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
  std::set<fs::path> paths;
  size_t unreported = 0;
  // Every save whose temporary folder is still there (its background tiers
  // may run), reported or not: what the process waits for at exit.
  std::vector<std::shared_ptr<SaveJob>> jobs;
};

PendingSaves& pending() {
  static auto* p = new PendingSaves();
  return *p;
}

void wait_at_exit();

void begin_save(const fs::path& final_path) {
  static std::once_flag registered;
  std::call_once(registered, [] { std::atexit(wait_at_exit); });
  PendingSaves& p = pending();
  std::lock_guard<std::mutex> lock(p.mutex);
  if (p.paths.count(final_path)) {
    throw AlreadyExistsError("a save to " + final_path.string() +
                             " is still in flight; wait for its result first");
  }
  p.paths.insert(final_path);
  ++p.unreported;
}

void track(const std::shared_ptr<SaveJob>& job) {
  PendingSaves& p = pending();
  std::lock_guard<std::mutex> lock(p.mutex);
  p.jobs.push_back(job);
}

void forget(const SaveJob& job) {
  PendingSaves& p = pending();
  std::lock_guard<std::mutex> lock(p.mutex);
  p.jobs.erase(std::remove_if(p.jobs.begin(), p.jobs.end(),
                              [&](const auto& j) { return j.get() == &job; }),
               p.jobs.end());
  p.cv.notify_all();
}

// True when the caller of this function may commit or discard the
// temporary folder; false when exit (or an earlier call) took it.
bool claim(SaveJob& job) {
  PendingSaves& p = pending();
  std::lock_guard<std::mutex> lock(p.mutex);
  if (job.claimed) return false;
  job.claimed = true;
  return true;
}

// Gives the caller the outcome, once: frees the final path, wakes
// result() and wait_for_pending_saves(), then calls on_complete (when
// `notify`; not for a save whose caller got the error from the call).
void report(SaveJob& job, std::exception_ptr error, bool notify) {
  {
    PendingSaves& p = pending();
    std::lock_guard<std::mutex> lock(p.mutex);
    if (job.reported) return;
    job.reported = true;
    p.paths.erase(job.final_path);
    --p.unreported;
    p.cv.notify_all();
  }
  {
    std::lock_guard<std::mutex> lock(job.state->mutex);
    job.state->done = true;
    job.state->error = error;
  }
  job.state->cv.notify_all();
  if (notify && job.on_complete) {
    try {
      job.on_complete(error);
    } catch (const std::exception& e) {
      internal::log(CKPT_LOG_ERROR,
                    std::string("on_complete callback threw: ") + e.what());
    }
  }
}

bool is_over(const std::future<void>& f) {
  return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

// The checkpointables whose background tier is still running.
std::vector<size_t> still_running(const SaveJob& job) {
  std::vector<size_t> running;
  for (size_t i = 0; i < job.futures.size(); ++i) {
    if (!is_over(job.futures[i])) running.push_back(i);
  }
  return running;
}

// "checkpointable 'x' (handler T from F)".
std::string checkpointable_and_handler(const SaveJob& job, size_t i) {
  std::string text = "checkpointable '" + job.names[i] + "'";
  if (i < job.handlers.size() && job.handlers[i]) {
    const HandlerInfo& info = job.handlers[i]->info();
    text += " (handler " + info.typestr;
    if (!info.origin.empty()) text += " from " + info.origin;
    text += ")";
  }
  return text;
}

std::string list_running(const SaveJob& job,
                         const std::vector<size_t>& running) {
  std::string text;
  for (size_t k = 0; k < running.size(); ++k) {
    if (k) text += ", ";
    text += checkpointable_and_handler(job, running[k]);
  }
  return text;
}

std::string temporary_folder_of(const SaveJob& job) {
  return job.temporary ? job.temporary->folder().string() : "(none)";
}

// The TimeoutError of a save whose deadline passed with background tiers
// still running.
std::exception_ptr timeout_error(const SaveJob& job,
                                 const std::vector<size_t>& running) {
  const bool one = running.size() == 1;
  return std::make_exception_ptr(TimeoutError(
      "saving " + job.final_path.string() + " did not finish within " +
      std::to_string(job.timeout.count()) +
      " ms (the Context's async_timeout): " + list_running(job, running) +
      (one ? " was" : " were") +
      " still being written; nothing was committed, and the temporary "
      "folder " +
      temporary_folder_of(job) + " is removed once " +
      (one ? "that handler ends" : "those handlers end") +
      " (or when the process exits)"));
}

std::string failed_to_save(const SaveJob& job, const std::string& name) {
  return "failed to save checkpointable '" + name + "' to " +
         job.final_path.string();
}

// The first background error. REQUIRES: every future is ready.
std::exception_ptr background_error(SaveJob& job) {
  std::exception_ptr error;
  for (size_t i = 0; i < job.futures.size(); ++i) {
    try {
      job.futures[i].get();
    } catch (...) {
      std::exception_ptr e = internal::current_exception_as_error(
          failed_to_save(job, job.names[i]));
      if (!error) error = e;
    }
  }
  return error;
}

// Commits the temporary folder; errors name the checkpoint.
void commit_now(SaveJob& job) {
  try {
    job.info.commit_timestamp_nsecs = now_nsecs();
    job.temporary->commit(job.info, job.file_mode, job.overwrite, job.durable);
  } catch (...) {
    std::rethrow_exception(internal::current_exception_as_error(
        "failed to commit checkpoint " + job.final_path.string()));
  }
}

// A save's outcome, with `mine` this process's error so far: with none,
// the checkpoint is committed. In a multi-process save the processes first
// agree on the outcome, and the primary host commits only when every one
// succeeded; the outcome is the same on every process, and this blocks
// until every process got here. Never throws.
std::exception_ptr conclude(SaveJob& job, std::exception_ptr mine) {
  if (!job.collectives) {
    if (mine) return mine;
    try {
      commit_now(job);
      return nullptr;
    } catch (...) {
      return std::current_exception();  // named by commit_now
    }
  }
  try {
    std::exception_ptr error =
        internal::agree_on_outcome(*job.collectives, job.final_path, mine);
    if (error) return error;
    return internal::announce_commit(*job.collectives, job.primary_host,
                                     job.final_path, [&] { commit_now(job); });
  } catch (...) {
    return internal::current_exception_as_error("saving " +
                                                job.final_path.string());
  }
}

// Commits (or discards) once every background tier is over, and tells the
// caller. REQUIRES: every future is ready.
void finish(SaveJob& job) {
  // The process may be exiting: then wait_at_exit took the temporary
  // folder, and nobody is left to tell.
  const bool mine = claim(job);
  std::exception_ptr error;
  if (mine) {
    error = background_error(job);
  } else {
    error = std::make_exception_ptr(TimeoutError(
        "saving " + job.final_path.string() +
        " was abandoned when the process exited; nothing was committed"));
  }
  error = conclude(job, error);
  if (error && mine) job.temporary->discard();
  // Reported (and on_complete called) before the job is forgotten: exit
  // waits for both.
  report(job, error, /*notify=*/true);
  forget(job);
}

// After the outcome went to the caller without them (a timeout, a failed
// blocking tier): waits on the pool for the background tiers still
// running, then removes the temporary folder. Checks every `delay`
// (doubling up to 100 ms); no pool thread blocks.
void clean_up_when_over(std::shared_ptr<SaveJob> job,
                        std::chrono::microseconds delay) {
  if (still_running(*job).empty()) {
    if (claim(*job)) {
      internal::log(CKPT_LOG_INFO,
                    "saving " + job->final_path.string() +
                        ": the background tiers of the failed save ended; "
                        "removing its temporary folder " +
                        temporary_folder_of(*job));
      job->temporary->discard();
    }
    forget(*job);
    return;
  }
  const auto next = std::min<std::chrono::microseconds>(
      delay * 2, std::chrono::milliseconds(100));
  internal::post_background_after(
      delay, [job, next] { clean_up_when_over(job, next); });
}

// Tells the caller `error` now, and leaves the background tiers still
// running to clean_up_when_over.
void give_up(const std::shared_ptr<SaveJob>& job, std::exception_ptr error,
             bool notify) {
  // (In a multi-process save the others wait for this one's outcome.)
  error = conclude(*job, error);
  report(*job, error, notify);
  internal::post_background(
      [job] { clean_up_when_over(job, std::chrono::milliseconds(1)); });
}

// finish() as a continuation on the pool: a check that finds a background
// tier still running posts the next check after `delay` (doubling up to
// 10 ms), so no pool thread ever blocks waiting for other pool work. Past
// the deadline the save fails with TimeoutError (give_up): an async save's
// handlers took their snapshots in the blocking tiers, so nothing of the
// caller's is still read.
void finish_when_over(std::shared_ptr<SaveJob> job,
                      std::chrono::microseconds delay) {
  const std::vector<size_t> running = still_running(*job);
  if (running.empty()) {
    finish(*job);
    return;
  }
  if (Clock::now() >= job->deadline) {
    give_up(job, timeout_error(*job, running), /*notify=*/true);
    return;
  }
  const auto next = std::min<std::chrono::microseconds>(
      delay * 2, std::chrono::milliseconds(10));
  internal::post_background_after(delay,
                                  [job, next] { finish_when_over(job, next); });
}

// True when `value` holds an array whose memory the caller only lends
// (Array::borrow: no owner keeps it alive).
bool borrows_memory(const Value& value) {
  std::vector<const Value*> pending_values = {&value};
  while (!pending_values.empty()) {
    const Value* v = pending_values.back();
    pending_values.pop_back();
    switch (v->kind()) {
      case Value::Kind::kArray:
        if (!v->as_array().owner()) return true;
        break;
      case Value::Kind::kShardedArray:
        for (const Shard& s : v->as_sharded_array().shards) {
          if (!s.data.owner()) return true;
        }
        break;
      case Value::Kind::kDict:
        for (const auto& [k, child] : v->as_dict()) {
          pending_values.push_back(&child);
        }
        break;
      case Value::Kind::kList:
        for (const auto& child : v->as_list()) pending_values.push_back(&child);
        break;
      default:
        break;
    }
  }
  return false;
}

// Whether a save may end (fail) while the background tier of `handler`
// for `value` still runs. An async save: yes, its handlers snapshot in the
// blocking tier. A synchronous save hands its arrays over without a
// snapshot: only a plugin handler (which sees nothing but what crossed the
// C ABI, kept alive through its retain) given no borrowed array may be
// left running; a borrowed array's memory is the caller's to free once
// the call returns, and a handler in the host process may use anything of
// the caller's.
bool may_leave_running(bool caller_waits, const Handler& handler,
                       const Value& value) {
  if (!caller_waits) return true;
  return internal::is_plugin_handler(handler) && !borrows_memory(value);
}

// The caller's side of a save it waits for (and of the clean-up after a
// failed blocking tier): waits for the background tiers until the
// deadline. Past it, returns false when every tier still running may be
// left running; otherwise warns, naming them, and waits for them (no
// deadline), then looks again. True when every tier is over.
bool wait_on_callers_thread(SaveJob& job) {
  for (auto& f : job.futures) {
    if (f.wait_until(job.deadline) != std::future_status::ready) break;
  }
  std::vector<bool> warned(job.futures.size(), false);
  for (;;) {
    const std::vector<size_t> running = still_running(job);
    if (running.empty()) return true;
    std::vector<size_t> must_wait;
    for (size_t i : running) {
      if (!job.may_leave_running[i]) must_wait.push_back(i);
    }
    if (must_wait.empty()) return false;
    for (size_t i : must_wait) {
      if (warned[i]) continue;
      warned[i] = true;
      const bool plugin = internal::is_plugin_handler(*job.handlers[i]);
      internal::log(
          CKPT_LOG_WARNING,
          "saving " + job.final_path.string() + ": " +
              checkpointable_and_handler(job, i) +
              " is still being written after the deadline of " +
              std::to_string(job.timeout.count()) +
              " ms (the Context's async_timeout); the save keeps waiting "
              "for it, because " +
              (plugin ? "the handler may still read memory the caller "
                        "lent it (a borrowed array)"
                      : "the handler runs in this process and may still "
                        "use the caller's data"));
    }
    const Clock::time_point late = Clock::now();
    for (size_t i : must_wait) job.futures[i].wait();
    internal::log(CKPT_LOG_INFO,
                  "saving " + job.final_path.string() + ": " +
                      list_running(job, must_wait) + " ended " +
                      std::to_string(
                          std::chrono::duration_cast<std::chrono::milliseconds>(
                              Clock::now() - late)
                              .count()) +
                      " ms after the warning");
  }
}

// The checkpointables of a save, by name. A value is the caller's own, not
// copied (the C views plugins get are self-contained, and every handler
// takes what it needs in its blocking tier), unless the save must change it
// (the placement of its sharded arrays) or made it (the metrics): then it
// is a copy the save owns, in `owned`.
struct SaveItems {
  std::vector<std::string> names;
  std::vector<const Value*> values;  // per name; may point into `owned`
  Checkpointables owned;             // reserved up front: never moves
  size_t size() const { return names.size(); }
};

// The checkpointables a caller passed, by name and value (not copied).
using CheckpointableRefs = std::vector<std::pair<std::string, const Value*>>;

CheckpointableRefs refs_of(const Checkpointables& checkpointables) {
  CheckpointableRefs refs;
  refs.reserve(checkpointables.size());
  for (const auto& [name, value] : checkpointables) {
    refs.emplace_back(name, &value);
  }
  return refs;
}

// The checkpointables to save, checked, with the metrics appended. The
// caller's values are referred to: they must outlive the blocking tiers.
SaveItems items_to_save(const fs::path& path,
                        const CheckpointableRefs& checkpointables,
                        const SaveOptions& options) {
  if (checkpointables.empty()) {
    throw InvalidArgumentError("nothing to save to " + path.string() +
                               ": no checkpointables given");
  }
  if (!options.custom_metadata.is_object()) {
    throw InvalidArgumentError("custom_metadata must be a JSON object");
  }
  // Deeper documents could not be read back (and copying them recurses).
  auto check_depth = [&](size_t depth, const std::string& what) {
    if (depth > kMaxNestingDepth) {
      throw InvalidArgumentError(what + " nested deeper than " +
                                 std::to_string(kMaxNestingDepth) +
                                 " levels, more than a checkpoint may hold");
    }
  };
  check_depth(nesting_depth(options.custom_metadata), "custom_metadata");
  if (options.metrics) check_depth(nesting_depth(*options.metrics), "metrics");
  for (size_t i = 0; i < checkpointables.size(); ++i) {
    const std::string& name = checkpointables[i].first;
    internal::check_checkpointable_name(name, false);
    check_depth(nesting_depth(*checkpointables[i].second),
                "checkpointable '" + name + "'");
    for (size_t j = 0; j < i; ++j) {
      if (name == checkpointables[j].first) {
        throw InvalidArgumentError("checkpointable '" + name +
                                   "' is given twice");
      }
    }
  }
  SaveItems items;
  items.owned.reserve(checkpointables.size() + 1);
  for (const auto& [name, value] : checkpointables) {
    items.names.push_back(name);
    if (internal::holds_sharded(*value)) {
      items.owned.emplace_back(name, *value);
      items.values.push_back(&items.owned.back().second);
    } else {
      items.values.push_back(value);
    }
  }
  if (options.metrics) {
    items.names.push_back(kMetricsName);
    items.owned.emplace_back(kMetricsName, Value::json(*options.metrics));
    items.values.push_back(&items.owned.back().second);
  }
  return items;
}

// AlreadyExistsError unless the final path is free or may be overwritten.
void check_destination(const fs::path& final_path, bool overwrite) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(final_path, ec))) return;
  if (!overwrite) {
    throw AlreadyExistsError("Destination " + final_path.string() +
                             " already exists; pass overwrite to replace it");
  }
  internal::check_replaceable(final_path);
}

std::shared_ptr<SaveJob> new_job(const fs::path& path,
                                 const SaveOptions& options,
                                 const ContextOptions& o, bool caller_waits) {
  auto job = std::make_shared<SaveJob>();
  job->final_path = normalized(path);
  job->overwrite = options.overwrite;
  job->durable = o.fsync;
  job->file_mode = o.file_mode;
  job->timeout = o.async_timeout;
  job->caller_waits = caller_waits;
  job->on_complete = options.on_complete;
  job->info.path = job->final_path;
  job->info.custom_metadata = options.custom_metadata;
  if (options.metrics) job->info.metrics = *options.metrics;
  job->state = std::make_shared<AsyncSave::State>();
  job->state->path = job->final_path;
  return job;
}

// Runs each checkpointable's blocking tier into the job's temporary
// checkpoint.
void run_blocking_tiers(SaveJob& job, const Context& context,
                        const SaveItems& items,
                        const std::vector<HandlerPtr>& handlers) {
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string& name = items.names[i];
    const HandlerInfo& info = handlers[i]->info();
    const fs::path folder = job.temporary->add_folder(
        name, {info.self_checked_files, info.self_checked_prefixes});
    job.names.push_back(name);
    job.info.item_handlers.emplace_back(name, handlers[i]->typestr());
    try {
      job.futures.push_back(handlers[i]->save(
          internal::call_context(context, name, folder), *items.values[i]));
    } catch (...) {
      std::rethrow_exception(
          internal::current_exception_as_error(failed_to_save(job, name)));
    }
  }
}

// After a blocking tier failed: the background tiers already started write
// into the temporary folder, so it goes once they end: at once when they
// end by the deadline (or must be waited for, see wait_on_callers_thread),
// else later on the pool. The caller gets `error` from the call.
// Returns the error to throw: `error`, or in a multi-process save the one
// the processes agreed on.
std::exception_ptr abandon_after_blocking_failure(
    const std::shared_ptr<SaveJob>& job, std::exception_ptr error) {
  if (!job->temporary) {  // nothing was started
    error = conclude(*job, error);
    report(*job, error, /*notify=*/false);
    return error;
  }
  track(job);
  if (!wait_on_callers_thread(*job)) {
    internal::log(CKPT_LOG_WARNING,
                  "saving " + job->final_path.string() +
                      " failed in a blocking tier while " +
                      list_running(*job, still_running(*job)) +
                      " still ran past the deadline; its temporary folder " +
                      temporary_folder_of(*job) +
                      " is removed once they end (or at exit)");
    give_up(job, error, /*notify=*/false);
    std::lock_guard<std::mutex> lock(job->state->mutex);
    return job->state->error;
  }
  error = conclude(*job, error);
  if (claim(*job)) job->temporary->discard();
  forget(*job);
  report(*job, error, /*notify=*/false);
  return error;
}

// The job of a save of `items` (items_to_save, shards placed), its
// handlers resolved. `views` receives the C views of the items, which
// resolution and the saves share.
std::shared_ptr<SaveJob> prepare_job(
    const fs::path& path, const SaveOptions& options, const Context& context,
    bool caller_waits, const SaveItems& items,
    std::vector<std::unique_ptr<internal::SharedCValueView>>& views) {
  std::vector<HandlerPtr> handlers;
  for (size_t i = 0; i < items.size(); ++i) {
    // A caller that waits changes nothing until the save ends: plugins may
    // write its arrays from the background without a snapshot copy.
    views.push_back(std::make_unique<internal::SharedCValueView>(
        *items.values[i], /*all_immutable=*/caller_waits));
    handlers.push_back(resolve_save_handler(context.registry(), items.names[i],
                                            *items.values[i]));
  }
  auto job = new_job(path, options, context.options(), caller_waits);
  job->handlers = handlers;
  for (size_t i = 0; i < items.size(); ++i) {
    job->may_leave_running.push_back(
        may_leave_running(caller_waits, *handlers[i], *items.values[i]));
  }
  return job;
}

// Runs the blocking tiers of a job whose temporary folder exists, then
// hands it to its commit: on this thread for a caller that waits, else on
// the pool.
AsyncSave run_and_commit(
    const std::shared_ptr<SaveJob>& job, const Context& context,
    SaveItems& items,
    std::vector<std::unique_ptr<internal::SharedCValueView>>& views) {
  try {
    job->info.init_timestamp_nsecs = now_nsecs();
    run_blocking_tiers(*job, context, items, job->handlers);
  } catch (...) {
    std::rethrow_exception(
        abandon_after_blocking_failure(job, std::current_exception()));
  }
  // The views go now (what a plugin retained of one stays: it holds the
  // memory it shows). The values the save made or changed stay until its
  // background tiers end.
  views.clear();
  job->owned_items = std::move(items.owned);
  track(job);
  if (job->caller_waits) {
    if (wait_on_callers_thread(*job)) {
      finish(*job);
    } else {
      give_up(job, timeout_error(*job, still_running(*job)),
              /*notify=*/true);
    }
  } else {
    // Even when every background tier is already over, the commit (and
    // on_complete) runs on the pool, never on the caller's thread.
    internal::post_background(
        [job] { finish_when_over(job, std::chrono::microseconds(200)); });
  }
  return AsyncSave(job->state);
}

// The last multi-process save started in this process.
struct LastMultiprocessSave {
  std::mutex mutex;
  std::weak_ptr<AsyncSave::State> state;
};

LastMultiprocessSave& last_multiprocess_save() {
  static auto* last = new LastMultiprocessSave();  // used at exit
  return *last;
}

// The collectives of a multi-process save (null: one process), once the
// previous multi-process save of this process has its outcome: the
// processes take the steps of one save at a time, in the same order.
std::shared_ptr<Collectives> collectives_for_save(const Context& context,
                                                  bool caller_waits) {
  if (context.process_count() == 1) return nullptr;
  std::shared_ptr<Collectives> collectives =
      context.options().multiprocessing.collectives;
  if (!caller_waits && !collectives->callable_from_any_thread()) {
    throw InvalidArgumentError(
        "an async multi-process save commits on a background thread, and "
        "these collectives may be called only from the thread that made "
        "them (for MPI: initialize with MPI_THREAD_MULTIPLE); save "
        "synchronously");
  }
  std::shared_ptr<AsyncSave::State> previous;
  {
    LastMultiprocessSave& last = last_multiprocess_save();
    std::lock_guard<std::mutex> lock(last.mutex);
    previous = last.state.lock();
  }
  if (previous) {
    std::unique_lock<std::mutex> lock(previous->mutex);
    previous->cv.wait(lock, [&] { return previous->done; });
  }
  return collectives;
}

void remember_multiprocess_save(const SaveJob& job) {
  LastMultiprocessSave& last = last_multiprocess_save();
  std::lock_guard<std::mutex> lock(last.mutex);
  last.state = job.state;
}

// "[a, b]".
std::string name_list(const std::vector<std::string>& names) {
  std::string text = "[";
  for (size_t i = 0; i < names.size(); ++i) {
    text += (i ? ", " : "") + names[i];
  }
  return text + "]";
}

// A save of many processes (multiprocess_save.h for the steps they take
// together): the primary host makes the temporary folder, every process
// runs its handlers into it, and the primary commits once every process
// succeeded. A failure on any process before the agreement is taken to the
// others, so that every process leaves with the same outcome.
AsyncSave start_multiprocess_save(const fs::path& path,
                                  const CheckpointableRefs& checkpointables,
                                  const SaveOptions& options, bool caller_waits,
                                  const Context& context,
                                  std::shared_ptr<Collectives> collectives) {
  const ContextOptions& o = context.options();
  const int primary = o.multiprocessing.primary_host;
  const bool is_primary = context.is_primary_host();
  SaveItems items;
  std::vector<std::unique_ptr<internal::SharedCValueView>> views;
  std::shared_ptr<SaveJob> job;
  std::exception_ptr local;  // this process's error, for the others
  // Step 0: the processes' shards; a failure to get this far ends the save
  // on every process.
  {
    std::string layout;
    try {
      items = items_to_save(path, checkpointables, options);
      layout = internal::shard_layout(items.owned);
    } catch (...) {
      local = std::current_exception();
    }
    const std::vector<std::string> layouts = internal::exchange_shard_layouts(
        *collectives, normalized(path), layout, local);
    internal::place_shards(items.owned, layouts, context.process_index());
  }
  try {
    job = prepare_job(path, options, context, caller_waits, items, views);
    job->collectives = collectives;
    job->primary_host = primary;
    begin_save(job->final_path);
    remember_multiprocess_save(*job);
  } catch (...) {
    local = std::current_exception();
    job.reset();  // its path was not taken: nothing to report
  }
  const fs::path final_path =
      job ? job->final_path : fs::absolute(path).lexically_normal();
  const std::vector<std::string>& names = items.names;
  internal::StartedSave started;
  try {
    started = internal::announce_temporary_folder(
        *collectives, primary, final_path, names, [&] {
          if (local) std::rethrow_exception(local);
          check_destination(job->final_path, options.overwrite);
          job->deadline = deadline_after(o.async_timeout);
          job->temporary = std::make_unique<internal::TemporaryCheckpoint>(
              job->final_path, o.directory_mode);
          return job->temporary->folder();
        });
  } catch (...) {
    // The primary host could not start it: it ends here, everywhere.
    std::exception_ptr error = std::current_exception();
    if (job) report(*job, error, /*notify=*/false);
    std::rethrow_exception(error);
  }
  if (!local && !is_primary) {
    try {
      if (started.primary_final_path != final_path) {
        throw InvalidArgumentError(
            "saving " + final_path.string() + " on process " +
            std::to_string(context.process_index()) +
            ": the primary host saves to " +
            started.primary_final_path.string() +
            "; every process must save to the same path");
      }
      if (started.primary_names != names) {
        throw InvalidArgumentError(
            "saving " + final_path.string() + " on process " +
            std::to_string(context.process_index()) + ": checkpointables " +
            name_list(names) + ", where the primary host saves " +
            name_list(started.primary_names) +
            "; every process must save the same checkpointables, in the "
            "same order");
      }
      job->deadline = deadline_after(o.async_timeout);
      job->temporary = internal::TemporaryCheckpoint::attach(
          final_path, started.folder, o.directory_mode);
    } catch (...) {
      local = std::current_exception();
    }
  }
  if (local) {
    // Nothing of this process was started: the others learn why.
    std::exception_ptr agreed;
    try {
      agreed = internal::agree_on_outcome(*collectives, final_path, local);
    } catch (...) {
      agreed = std::current_exception();
    }
    if (job) report(*job, agreed, /*notify=*/false);
    std::rethrow_exception(agreed ? agreed : local);
  }
  return run_and_commit(job, context, items, views);
}

// Starts a save. `caller_waits`: the caller blocks until the outcome (the
// synchronous calls), so arrays are handed over without a snapshot
// (frozen_for_blocking_save) and the commit runs on the caller's thread.
// Both kinds have the deadline of the Context's async_timeout; a
// synchronous save ends at it only when no background tier still running
// may read the caller's memory (may_leave_running).
AsyncSave start_save(const fs::path& path,
                     const CheckpointableRefs& checkpointables,
                     const SaveOptions& options, bool caller_waits) {
  internal::start_up();
  const Context& context = Context::current();
  if (std::shared_ptr<Collectives> collectives =
          collectives_for_save(context, caller_waits)) {
    return start_multiprocess_save(path, checkpointables, options, caller_waits,
                                   context, collectives);
  }
  SaveItems items = items_to_save(path, checkpointables, options);
  internal::place_shards(items.owned, {internal::shard_layout(items.owned)}, 0);
  std::vector<std::unique_ptr<internal::SharedCValueView>> views;
  std::shared_ptr<SaveJob> job =
      prepare_job(path, options, context, caller_waits, items, views);
  check_destination(job->final_path, options.overwrite);
  begin_save(job->final_path);
  try {
    job->deadline = deadline_after(context.options().async_timeout);
    job->temporary = std::make_unique<internal::TemporaryCheckpoint>(
        job->final_path, context.options().directory_mode);
  } catch (...) {
    std::rethrow_exception(
        abandon_after_blocking_failure(job, std::current_exception()));
  }
  return run_and_commit(job, context, items, views);
}

// How long the process waits at exit for the saves in flight: the
// CKPT_EXIT_TIMEOUT_SECONDS environment variable (seconds, from the start
// of exit) when set to a number >= 0; else until the deadline of the last
// save whose outcome is not reported yet (its Context's async_timeout from
// its start: by then it has committed or failed either way), and not at
// all for the background tiers of saves that already failed.
// REQUIRES: pending().mutex held.
Clock::time_point exit_deadline(const PendingSaves& p) {
  const Clock::time_point now = Clock::now();
  if (const char* env = std::getenv("CKPT_EXIT_TIMEOUT_SECONDS")) {
    char* end = nullptr;
    const double seconds = std::strtod(env, &end);
    if (end != env && *end == '\0' && seconds >= 0 && seconds < 1e9) {
      return now + std::chrono::duration_cast<Clock::duration>(
                       std::chrono::duration<double>(seconds));
    }
    internal::log(CKPT_LOG_WARNING, std::string("CKPT_EXIT_TIMEOUT_SECONDS=") +
                                        env +
                                        " is not a number of seconds; ignored");
  }
  Clock::time_point latest = now;
  for (const auto& job : p.jobs) {
    if (!job->reported) latest = std::max(latest, job->deadline);
  }
  return latest;
}

std::string seconds_text(Clock::duration d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d);
  return std::to_string(ms.count() / 1000) + "." +
         std::to_string(ms.count() % 1000 / 100) + " s";
}

// At exit (atexit, registered by the first save): waits for the saves in
// flight until exit_deadline, then gives up on the rest, naming for each
// the save, the checkpointables and handlers still running and the
// temporary folder it removes. The threads running them are left to the
// process's end.
void wait_at_exit() {
  PendingSaves& p = pending();
  std::unique_lock<std::mutex> lock(p.mutex);
  if (p.jobs.empty()) return;
  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline = exit_deadline(p);
  const auto none_left = [&] { return p.jobs.empty(); };
  if (!p.cv.wait_until(lock,
                       std::min(deadline, start + std::chrono::seconds(1)),
                       none_left) &&
      Clock::now() < deadline) {
    internal::log(CKPT_LOG_WARNING,
                  "exiting: waiting up to " +
                      seconds_text(deadline - Clock::now()) + " for " +
                      std::to_string(p.jobs.size()) +
                      " save(s) in flight (the Context's async_timeout; set "
                      "CKPT_EXIT_TIMEOUT_SECONDS to change it)");
    p.cv.wait_until(lock, deadline, none_left);
  }
  // Each with whether it had already failed (reported).
  std::vector<std::pair<std::shared_ptr<SaveJob>, bool>> abandoned;
  std::vector<std::shared_ptr<SaveJob>> committing;
  for (const auto& job : p.jobs) {
    if (job->claimed) {
      committing.push_back(job);
    } else {
      job->claimed = true;
      abandoned.emplace_back(job, job->reported);
    }
  }
  lock.unlock();
  const std::string waited = seconds_text(Clock::now() - start);
  for (const auto& [job, failed] : abandoned) {
    const std::vector<size_t> running = still_running(*job);
    internal::log(
        CKPT_LOG_ERROR,
        "exiting after waiting " + waited + ": abandoned the save of " +
            job->final_path.string() +
            (failed ? " (it had already failed)" : "") + ": " +
            (running.empty() ? std::string("its commit had not run")
                             : list_running(*job, running) +
                                   (running.size() == 1 ? " was" : " were") +
                                   " still running") +
            "; nothing was committed; removing its temporary folder " +
            temporary_folder_of(*job));
    if (job->temporary) job->temporary->discard();
  }
  for (const auto& job : committing) {
    internal::log(CKPT_LOG_ERROR, "exiting after waiting " + waited +
                                      " while the save of " +
                                      job->final_path.string() +
                                      " was still committing or cleaning up");
  }
}

}  // namespace

// ------------------------------------------------------------ AsyncSave

AsyncSave::AsyncSave(std::shared_ptr<State> state) : state_(std::move(state)) {}

void AsyncSave::result(std::optional<std::chrono::milliseconds> timeout) const {
  if (!state_) throw InvalidArgumentError("AsyncSave: no save behind it");
  std::unique_lock<std::mutex> lock(state_->mutex);
  if (timeout) {
    if (!state_->cv.wait_for(lock, *timeout, [&] { return state_->done; })) {
      throw TimeoutError("saving " + state_->path.string() +
                         " has not finished after " +
                         std::to_string(timeout->count()) + " ms");
    }
  } else {
    state_->cv.wait(lock, [&] { return state_->done; });
  }
  if (state_->error) std::rethrow_exception(state_->error);
}

bool AsyncSave::done() const {
  if (!state_) return true;
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->done;
}

const fs::path& AsyncSave::path() const {
  static const fs::path none;
  return state_ ? state_->path : none;
}

// ---------------------------------------------------------------- save

AsyncSave save_checkpointables_async(const fs::path& path,
                                     const Checkpointables& checkpointables,
                                     const SaveOptions& options) {
  return internal::with_errors_converted([&] {
    return start_save(path, refs_of(checkpointables), options,
                      /*caller_waits=*/false);
  });
}

void save_checkpointables(const fs::path& path,
                          const Checkpointables& checkpointables,
                          const SaveOptions& options) {
  internal::with_errors_converted([&] {
    start_save(path, refs_of(checkpointables), options, /*caller_waits=*/true)
        .result();
  });
}

// save and save_async name the tree without copying it into a
// Checkpointables.
AsyncSave save_async(const fs::path& path, const Value& tree,
                     const SaveOptions& options) {
  return internal::with_errors_converted([&] {
    return start_save(path, {{kDefaultCheckpointableName, &tree}}, options,
                      /*caller_waits=*/false);
  });
}

void save(const fs::path& path, const Value& tree, const SaveOptions& options) {
  internal::with_errors_converted([&] {
    start_save(path, {{kDefaultCheckpointableName, &tree}}, options,
               /*caller_waits=*/true)
        .result();
  });
}

void wait_for_pending_saves() {
  PendingSaves& p = pending();
  std::unique_lock<std::mutex> lock(p.mutex);
  p.cv.wait(lock, [&] { return p.unreported == 0; });
}

}  // namespace ckpt
