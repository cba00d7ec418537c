#include "save/save_job.h"

#include <ckpt/errors.h>
#include <ckpt/registry.h>

#include <algorithm>
#include <cstdlib>

#include "handlers/context.h"
#include "multiprocess/collective_steps.h"
#include "plugin_host/plugin_handler.h"
#include "util/async_engine.h"
#include "util/error_conversion.h"
#include "util/logging.h"

namespace fs = std::filesystem;

namespace ckpt::internal {

namespace {

int64_t now_nsecs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Clock::time_point deadline_after(std::chrono::milliseconds timeout) {
  constexpr std::chrono::hours kCentury(24 * 365 * 100);
  const Clock::time_point now = Clock::now();
  if (timeout.count() <= 0) return now;
  if (timeout >= kCentury) return now + kCentury;
  return now + timeout;
}

PendingSaves& pending() {
  static auto* p = new PendingSaves();
  return *p;
}

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

namespace {

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

}  // namespace

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

namespace {

bool is_over(const std::future<void>& f) {
  return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

}  // namespace

std::vector<size_t> still_running(const SaveJob& job) {
  std::vector<size_t> running;
  for (size_t i = 0; i < job.futures.size(); ++i) {
    if (!is_over(job.futures[i])) running.push_back(i);
  }
  return running;
}

namespace {

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

}  // namespace

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

namespace {

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

// Lets each handler finish what spans every process's files (the primary
// host's last step before the commit); errors name the checkpointable.
void finalize_saves(SaveJob& job) {
  for (size_t i = 0; i < job.calls.size(); ++i) {
    try {
      job.handlers[i]->finalize_save(job.calls[i]);
    } catch (...) {
      std::rethrow_exception(internal::current_exception_as_error(
          failed_to_save(job, job.names[i])));
    }
  }
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
      finalize_saves(job);
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
                                     job.final_path, [&] {
                                       finalize_saves(job);
                                       commit_now(job);
                                     });
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
    job.calls.push_back(internal::call_context(context, name, folder));
    job.info.item_handlers.emplace_back(name, handlers[i]->typestr());
    try {
      job.futures.push_back(
          handlers[i]->save(job.calls.back(), *items.values[i]));
    } catch (...) {
      std::rethrow_exception(
          internal::current_exception_as_error(failed_to_save(job, name)));
    }
  }
}

}  // namespace

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

}  // namespace ckpt::internal
