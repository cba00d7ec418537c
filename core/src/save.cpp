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

#include "async_engine.h"
#include "atomic_commit.h"
#include "context_internal.h"
#include "error_conversion.h"
#include "layout_internal.h"
#include "logging.h"
#include "startup.h"
#include "value_bridge.h"

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

// Saves in flight in this process, by final path.
struct PendingSaves {
  std::mutex mutex;
  std::condition_variable cv;
  std::set<fs::path> paths;
  size_t count = 0;
};

PendingSaves& pending() {
  static auto* p = new PendingSaves();
  return *p;
}

void wait_at_exit() { wait_for_pending_saves(); }

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
  ++p.count;
}

void end_save(const fs::path& final_path) {
  PendingSaves& p = pending();
  std::lock_guard<std::mutex> lock(p.mutex);
  p.paths.erase(final_path);
  --p.count;
  p.cv.notify_all();
}

fs::path normalized(const fs::path& path) {
  if (path.empty()) throw InvalidArgumentError("the checkpoint path is empty");
  fs::path p = fs::absolute(path).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();  // trailing slash
  return p;
}

// One save from its blocking tiers to its commit.
struct SaveJob {
  fs::path final_path;
  std::unique_ptr<internal::TemporaryCheckpoint> temporary;
  bool overwrite = false;
  bool durable = true;
  unsigned file_mode = 0644;
  bool has_deadline = true;
  Clock::time_point deadline;
  std::chrono::milliseconds timeout{0};
  std::vector<std::string> names;
  std::vector<std::future<void>> futures;
  CheckpointInfo info;
  std::function<void(std::exception_ptr)> on_complete;
  std::shared_ptr<AsyncSave::State> state;
};

std::string failed_to_save(const SaveJob& job, const std::string& name) {
  return "failed to save checkpointable '" + name + "' to " +
         job.final_path.string();
}

// The first background error, or a timeout naming the checkpointable still
// being written. REQUIRES: every future is ready, or the deadline passed.
std::exception_ptr background_error(SaveJob& job) {
  std::exception_ptr error;
  for (size_t i = 0; i < job.futures.size(); ++i) {
    if (job.futures[i].wait_for(std::chrono::seconds(0)) !=
        std::future_status::ready) {
      if (!error) {
        error = std::make_exception_ptr(TimeoutError(
            "saving " + job.final_path.string() + " did not finish within " +
            std::to_string(job.timeout.count()) + " ms (checkpointable '" +
            job.names[i] +
            "' was still being written); nothing was committed"));
      }
      continue;
    }
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

// Commits (or discards) once the background tiers are over, and tells the
// caller. REQUIRES: as background_error.
void finish(SaveJob& job) {
  std::exception_ptr error = background_error(job);
  if (!error) {
    try {
      job.info.commit_timestamp_nsecs = now_nsecs();
      job.temporary->commit(job.info, job.file_mode, job.overwrite,
                            job.durable);
    } catch (...) {
      error = internal::current_exception_as_error(
          "failed to commit checkpoint " + job.final_path.string());
    }
  }
  if (error) job.temporary->discard();
  end_save(job.final_path);
  {
    std::lock_guard<std::mutex> lock(job.state->mutex);
    job.state->done = true;
    job.state->error = error;
  }
  job.state->cv.notify_all();
  if (job.on_complete) {
    try {
      job.on_complete(error);
    } catch (const std::exception& e) {
      internal::log(CKPT_LOG_ERROR,
                    std::string("on_complete callback threw: ") + e.what());
    }
  }
}

bool background_over(const SaveJob& job) {
  if (job.has_deadline && Clock::now() >= job.deadline) return true;
  return std::all_of(job.futures.begin(), job.futures.end(), [](auto& f) {
    return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  });
}

// finish() as a continuation on the pool: a check that finds a background
// tier still running posts the next check after `delay` (doubling up to
// 10 ms), so no pool thread ever blocks waiting for other pool work.
void finish_when_over(std::shared_ptr<SaveJob> job,
                      std::chrono::microseconds delay) {
  if (background_over(*job)) {
    finish(*job);
    return;
  }
  const auto next = std::min<std::chrono::microseconds>(
      delay * 2, std::chrono::milliseconds(10));
  internal::post_background_after(delay,
                                  [job, next] { finish_when_over(job, next); });
}

// `value` with every array marked immutable: for a save whose caller waits
// for the commit, nothing can change the arrays meanwhile, so handlers may
// write them from the background without a snapshot copy.
Value frozen_for_blocking_save(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kArray: {
      const Array& a = value.as_array();
      return Value(Array::share(a.dtype(), a.shape(), a.data(), a.owner(),
                                /*immutable=*/true, a.strides()));
    }
    case Value::Kind::kDict: {
      Value::Dict dict;
      dict.reserve(value.size());
      for (const auto& [k, v] : value.as_dict()) {
        dict.emplace_back(k, frozen_for_blocking_save(v));
      }
      return Value::dict(std::move(dict));
    }
    case Value::Kind::kList: {
      Value::List list;
      list.reserve(value.size());
      for (const auto& v : value.as_list()) {
        list.push_back(frozen_for_blocking_save(v));
      }
      return Value::list(std::move(list));
    }
    default:
      return value;
  }
}

// The checkpointables to save, checked, with the metrics appended; each
// value copied once, and for a save whose caller waits with its arrays
// flagged immutable (frozen_for_blocking_save).
Checkpointables items_to_save(const fs::path& path,
                              const Checkpointables& checkpointables,
                              const SaveOptions& options, bool caller_waits) {
  if (checkpointables.empty()) {
    throw InvalidArgumentError("nothing to save to " + path.string() +
                               ": no checkpointables given");
  }
  if (!options.custom_metadata.is_object()) {
    throw InvalidArgumentError("custom_metadata must be a JSON object");
  }
  for (size_t i = 0; i < checkpointables.size(); ++i) {
    const std::string& name = checkpointables[i].first;
    internal::check_checkpointable_name(name, false);
    for (size_t j = 0; j < i; ++j) {
      if (name == checkpointables[j].first) {
        throw InvalidArgumentError("checkpointable '" + name +
                                   "' is given twice");
      }
    }
  }
  Checkpointables items;
  items.reserve(checkpointables.size() + 1);
  for (const auto& [name, value] : checkpointables) {
    items.emplace_back(name,
                       caller_waits ? frozen_for_blocking_save(value) : value);
  }
  if (options.metrics) {
    items.emplace_back(kMetricsName, Value::json(*options.metrics));
  }
  return items;
}

// AlreadyExistsError unless the final path is free or may be overwritten.
void check_destination(const fs::path& final_path, bool overwrite) {
  std::error_code ec;
  if (!fs::exists(final_path, ec)) return;
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
  job->has_deadline = !caller_waits;
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
                        const Checkpointables& items,
                        const std::vector<HandlerPtr>& handlers) {
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string& name = items[i].first;
    const fs::path folder =
        job.temporary->add_folder(name, handlers[i]->info().self_checked_files);
    job.names.push_back(name);
    job.info.item_handlers.emplace_back(name, handlers[i]->typestr());
    try {
      job.futures.push_back(handlers[i]->save(
          internal::call_context(context, name, folder), items[i].second));
    } catch (...) {
      std::rethrow_exception(
          internal::current_exception_as_error(failed_to_save(job, name)));
    }
  }
}

// Starts a save. `caller_waits`: the caller blocks until the commit (the
// synchronous calls), so arrays need no snapshot and there is no deadline:
// returning while a background tier still reads the caller's memory would
// let the caller free it; the commit then runs on the caller's thread.
AsyncSave start_save(const fs::path& path,
                     const Checkpointables& checkpointables,
                     const SaveOptions& options, bool caller_waits) {
  internal::start_up();
  const Context& context = Context::current();
  const ContextOptions& o = context.options();
  if (o.process_count > 1) {
    throw UnimplementedError(
        "multi-process saves need a barrier between processes, which this "
        "build does not provide yet (process_count = " +
        std::to_string(o.process_count) + ")");
  }
  const Checkpointables items =
      items_to_save(path, checkpointables, options, caller_waits);
  // Resolution and the saves share one C view of each value.
  std::vector<std::unique_ptr<internal::SharedCValueView>> shared_views;
  std::vector<HandlerPtr> handlers;
  for (size_t i = 0; i < items.size(); ++i) {
    shared_views.push_back(
        std::make_unique<internal::SharedCValueView>(items[i].second));
    handlers.push_back(resolve_save_handler(context.registry(), items[i].first,
                                            items[i].second));
  }
  auto job = new_job(path, options, o, caller_waits);
  check_destination(job->final_path, options.overwrite);
  begin_save(job->final_path);
  try {
    job->temporary = std::make_unique<internal::TemporaryCheckpoint>(
        job->final_path, o.directory_mode);
    job->info.init_timestamp_nsecs = now_nsecs();
    job->deadline = Clock::now() + o.async_timeout;
    run_blocking_tiers(*job, context, items, handlers);
  } catch (...) {
    // Background tiers already started write into the temporary folder:
    // let them end before it goes.
    for (auto& f : job->futures) f.wait();
    job->temporary.reset();
    end_save(job->final_path);
    throw;
  }
  if (caller_waits) {
    for (auto& f : job->futures) f.wait();
    finish(*job);
  } else {
    // Even when every background tier is already over, the commit (and
    // on_complete) runs on the pool, never on the caller's thread.
    internal::post_background(
        [job] { finish_when_over(job, std::chrono::microseconds(200)); });
  }
  return AsyncSave(job->state);
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
    return start_save(path, checkpointables, options, /*caller_waits=*/false);
  });
}

void save_checkpointables(const fs::path& path,
                          const Checkpointables& checkpointables,
                          const SaveOptions& options) {
  internal::with_errors_converted([&] {
    start_save(path, checkpointables, options, /*caller_waits=*/true).result();
  });
}

AsyncSave save_async(const fs::path& path, const Value& tree,
                     const SaveOptions& options) {
  return save_checkpointables_async(path, {{kDefaultCheckpointableName, tree}},
                                    options);
}

void save(const fs::path& path, const Value& tree, const SaveOptions& options) {
  save_checkpointables(path, {{kDefaultCheckpointableName, tree}}, options);
}

void wait_for_pending_saves() {
  PendingSaves& p = pending();
  std::unique_lock<std::mutex> lock(p.mutex);
  p.cv.wait(lock, [&] { return p.count == 0; });
}

}  // namespace ckpt
