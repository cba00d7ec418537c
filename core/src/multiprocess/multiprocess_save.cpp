#include "multiprocess/multiprocess_save.h"

#include <ckpt/errors.h>

#include <mutex>
#include <string>
#include <vector>

#include "multiprocess/collective_steps.h"
#include "multiprocess/sharding.h"
#include "save/save_job.h"
#include "save/save_owner.h"

namespace fs = std::filesystem;

namespace ckpt::internal {

namespace {

// The last multi-process save started in this process.
struct LastMultiprocessSave {
  std::mutex mutex;
  std::weak_ptr<AsyncSave::State> state;
};

LastMultiprocessSave& last_multiprocess_save() {
  static auto* last = new LastMultiprocessSave();  // used at exit
  return *last;
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

// Step 0: the processes' shards. `local` receives this process's error; a
// failure to get this far ends the save on every process.
SaveItems exchange_shards(Collectives& collectives, const fs::path& path,
                          const CheckpointableRefs& checkpointables,
                          const SaveOptions& options, int me,
                          std::exception_ptr& local) {
  SaveItems items;
  std::string layout;
  try {
    items = items_to_save(path, checkpointables, options);
    layout = shard_layout(items.owned);
  } catch (...) {
    local = std::current_exception();
  }
  const std::vector<std::string> layouts =
      exchange_shard_layouts(collectives, normalized(path), layout, local);
  place_shards(items.owned, layouts, me);
  return items;
}

// On a process other than the primary host: checks that it saves what the
// primary saves, and attaches to the primary's temporary folder.
void attach_to_primary(SaveJob& job, const StartedSave& started,
                       const std::vector<std::string>& names,
                       const Context& context) {
  const fs::path& final_path = job.final_path;
  const std::string process = std::to_string(context.process_index());
  if (started.primary_final_path != final_path) {
    throw InvalidArgumentError(
        "saving " + final_path.string() + " on process " + process +
        ": the primary host saves to " + started.primary_final_path.string() +
        "; every process must save to the same path");
  }
  if (started.primary_names != names) {
    throw InvalidArgumentError(
        "saving " + final_path.string() + " on process " + process +
        ": checkpointables " + name_list(names) +
        ", where the primary host saves " + name_list(started.primary_names) +
        "; every process must save the same checkpointables, in the same "
        "order");
  }
  const ContextOptions& o = context.options();
  job.deadline = deadline_after(o.async_timeout);
  job.temporary =
      TemporaryCheckpoint::attach(final_path, started.folder, o.directory_mode);
}

// Nothing of this process was started because of `local`: the others learn
// why, and every process throws the error they agree on.
[[noreturn]] void fail_everywhere(Collectives& collectives,
                                  const std::shared_ptr<SaveJob>& job,
                                  const fs::path& final_path,
                                  std::exception_ptr local) {
  std::exception_ptr agreed;
  try {
    agreed = agree_on_outcome(collectives, final_path, local);
  } catch (...) {
    agreed = std::current_exception();
  }
  if (job) report(*job, agreed, /*notify=*/false);
  std::rethrow_exception(agreed ? agreed : local);
}

}  // namespace

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

AsyncSave start_multiprocess_save(const fs::path& path,
                                  const CheckpointableRefs& checkpointables,
                                  const SaveOptions& options, bool caller_waits,
                                  const Context& context,
                                  std::shared_ptr<Collectives> collectives) {
  const ContextOptions& o = context.options();
  const int primary = o.multiprocessing.primary_host;
  std::exception_ptr local;  // this process's error, for the others
  SaveItems items = exchange_shards(*collectives, path, checkpointables,
                                    options, context.process_index(), local);
  std::vector<std::unique_ptr<SharedCValueView>> views;
  std::shared_ptr<SaveJob> job;
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
  StartedSave started;
  try {
    started = announce_temporary_folder(
        *collectives, primary, final_path, items.names, [&] {
          if (local) std::rethrow_exception(local);
          check_destination(job->final_path, options.overwrite);
          // Only the primary host runs this: one process removes what
          // earlier saves to the path left when they died.
          remove_dead_temporaries_of(job->final_path);
          job->deadline = deadline_after(o.async_timeout);
          job->temporary = std::make_unique<TemporaryCheckpoint>(
              job->final_path, o.directory_mode);
          return job->temporary->folder();
        });
  } catch (...) {
    // The primary host could not start it: it ends here, everywhere.
    std::exception_ptr error = std::current_exception();
    if (job) report(*job, error, /*notify=*/false);
    std::rethrow_exception(error);
  }
  if (!local && !context.is_primary_host()) {
    try {
      attach_to_primary(*job, started, items.names, context);
    } catch (...) {
      local = std::current_exception();
    }
  }
  if (local) fail_everywhere(*collectives, job, final_path, local);
  return run_and_commit(job, context, items, views);
}

}  // namespace ckpt::internal
