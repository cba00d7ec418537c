// Saving checkpoints (checkpoint.h): the public calls, AsyncSave, and the
// start of a save of one process (save_job.h for the rest of its life;
// multiprocess_save.h for a save of many processes).
#include <ckpt/checkpoint.h>
#include <ckpt/context.h>
#include <ckpt/errors.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "multiprocess/multiprocess_save.h"
#include "multiprocess/sharding.h"
#include "plugin_host/startup.h"
#include "save/save_inputs.h"
#include "save/save_job.h"
#include "save/save_owner.h"
#include "util/error_conversion.h"

namespace fs = std::filesystem;

namespace ckpt {

namespace {

using internal::CheckpointableRefs;

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
          internal::collectives_for_save(context, caller_waits)) {
    return internal::start_multiprocess_save(
        path, checkpointables, options, caller_waits, context, collectives);
  }
  internal::SaveItems items =
      internal::items_to_save(path, checkpointables, options);
  internal::place_shards(items.owned, {internal::shard_layout(items.owned)}, 0);
  std::vector<std::unique_ptr<internal::SharedCValueView>> views;
  std::shared_ptr<internal::SaveJob> job =
      internal::prepare_job(path, options, context, caller_waits, items, views);
  internal::check_destination(job->final_path, options.overwrite);
  internal::begin_save(job->final_path);
  internal::remove_dead_temporaries_of(job->final_path);
  try {
    job->deadline = internal::deadline_after(context.options().async_timeout);
    job->temporary = std::make_unique<internal::TemporaryCheckpoint>(
        job->final_path, context.options().directory_mode);
  } catch (...) {
    std::rethrow_exception(internal::abandon_after_blocking_failure(
        job, std::current_exception()));
  }
  return internal::run_and_commit(job, context, items, views);
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
    return start_save(path, internal::refs_of(checkpointables), options,
                      /*caller_waits=*/false);
  });
}

void save_checkpointables(const fs::path& path,
                          const Checkpointables& checkpointables,
                          const SaveOptions& options) {
  internal::with_errors_converted([&] {
    start_save(path, internal::refs_of(checkpointables), options,
               /*caller_waits=*/true)
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
  internal::PendingSaves& p = internal::pending();
  std::unique_lock<std::mutex> lock(p.mutex);
  p.cv.wait(lock, [&] { return p.unreported == 0; });
}

}  // namespace ckpt
