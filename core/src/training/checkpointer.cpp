// ckpt::Checkpointer: a root of step checkpoints on top of the save and
// load calls (ckpt/checkpointer.h).
#include <ckpt/checkpointer.h>
#include <ckpt/context.h>
#include <ckpt/errors.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>

#include "format/names.h"
#include "save/atomic_commit.h"
#include "save/save_owner.h"
#include "training/checkpoint_root.h"
#include "training/remote_tier.h"
#include "training/root_files.h"
#include "util/error_conversion.h"
#include "util/logging.h"
#include "value/utf8_checks.h"

namespace fs = std::filesystem;

namespace ckpt {

namespace {

// Set by request_preemption (and so by the signal handler).
std::atomic<bool> g_preempted{false};
static_assert(std::atomic<bool>::is_always_lock_free,
              "the preemption flag is set from a signal handler");

extern "C" void on_preemption_signal(int signal_number) {
  if (g_preempted.exchange(true)) {
    // A second notice: end as if no handler were installed.
    ::signal(signal_number, SIG_DFL);
    ::raise(signal_number);
  }
}

void install_preemption_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action {};
    action.sa_handler = on_preemption_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    for (int signal_number : {SIGTERM, SIGINT}) {
      if (::sigaction(signal_number, &action, nullptr) != 0) {
        throw_error(error_kind_from_errno(errno),
                    "cannot install the preemption signal handler");
      }
    }
  });
}

// Reads the steps of `steps` still in `unread` (seen by folder name only):
// all of them, or (`all` false) from the newest back until the newest is
// read. A step whose folder is not a whole checkpoint leaves `steps`.
void read_details(std::vector<CheckpointStep>& steps, std::set<int64_t>& unread,
                  bool all) {
  if (unread.empty()) return;
  std::vector<bool> drop(steps.size(), false);
  for (size_t i = steps.size(); i-- > 0;) {
    if (unread.erase(steps[i].step) == 0) {
      if (!all) break;
      continue;
    }
    StepFolder folder =
        internal::read_step_folder(steps[i].path, steps[i].step);
    if (!folder.committed) {
      drop[i] = true;
      continue;
    }
    steps[i] = std::move(folder.checkpoint);
    if (!all) break;
  }
  size_t kept = 0;
  for (size_t i = 0; i < steps.size(); ++i) {
    if (!drop[i]) steps[kept++] = std::move(steps[i]);
  }
  steps.resize(kept);
}

// Makes `found` (steps known by folder name) the steps, and reads the
// newest of them: what an open and a reload start from.
void know_by_name(std::vector<CheckpointStep> found,
                  std::vector<CheckpointStep>& steps,
                  std::set<int64_t>& unread) {
  steps = std::move(found);
  unread.clear();
  for (const CheckpointStep& step : steps) unread.insert(step.step);
  read_details(steps, unread, /*all=*/false);
}

// Records the root's preservation policy for `ckpt ls`; a root that will
// not take the record still checkpoints.
void record_policy(const fs::path& root, const PreservationPolicy& policy) {
  try {
    internal::write_policy_record(root, policy.to_json());
  } catch (const Error& e) {
    internal::log(CKPT_LOG_WARNING,
                  "could not record the preservation policy of " +
                      root.string() +
                      " (ckpt ls will not show it): " + e.what());
  }
}

}  // namespace

void request_preemption() noexcept { g_preempted.store(true); }

void internal::forget_preemption_notice() { g_preempted.store(false); }

struct Checkpointer::State {
  CheckpointerOptions options;
  std::shared_ptr<Collectives> collectives;  // null: one process
  int primary_host = 0;
  bool primary = true;

  mutable std::mutex mutex;  // guards the members up to the next comment
  std::vector<CheckpointStep> steps;  // committed, ascending
  // Steps of `steps` known by folder name only (read_details): the newest
  // is always read, so that a root of thousands of steps opens at once.
  std::set<int64_t> unread;
  std::map<int64_t, int> loading;  // step -> loads running
  std::vector<TemporaryFolder> leftovers;

  // Used by the thread that drives the Checkpointer only.
  AsyncSave in_flight;
  bool has_in_flight = false;
  int64_t in_flight_step = 0;
  std::chrono::system_clock::time_point in_flight_started;
  bool preemption_agreed = false;  // every process knows of a notice
  bool preemption_saved = false;   // and a step after it committed
  bool closed = false;

  // Last, so that it stops first: its uploader calls back into the state.
  std::unique_ptr<internal::RemoteTier> remote;
};

Checkpointer::Checkpointer(fs::path directory, CheckpointerOptions options)
    : directory_(fs::absolute(std::move(directory)).lexically_normal()),
      state_(std::make_unique<State>()) {
  State& s = *state_;
  s.options = std::move(options);
  s.options.step_name_format.check();
  const Context& context = Context::current();
  s.collectives = context.options().multiprocessing.collectives;
  s.primary_host = context.options().multiprocessing.primary_host;
  s.primary = context.is_primary_host();
  if (s.options.handle_preemption_signals) install_preemption_handler();
  internal::with_errors_converted([&] { fs::create_directories(directory_); });
  internal::RootFolders listing =
      internal::list_root_folders(directory_, s.options.step_name_format);
  know_by_name(std::move(listing.steps), s.steps, s.unread);
  if (!s.options.custom_metadata.is_object()) {
    throw InvalidArgumentError(
        "CheckpointerOptions: custom_metadata must be a JSON object");
  }
  if (!s.options.custom_metadata.empty()) {
    internal::check_json_text(s.options.custom_metadata,
                              "CheckpointerOptions: custom_metadata");
    if (s.primary) {
      internal::write_root_metadata(directory_, s.options.custom_metadata);
    }
    // Every process reads the root's metadata once the primary wrote it.
    if (s.collectives && s.collectives->process_count() > 1) {
      s.collectives->barrier();
    }
  }
  if (s.primary) record_policy(directory_, *s.options.preservation_policy);
  for (TemporaryFolder& temporary : listing.temporaries) {
    if (s.primary && s.options.cleanup_temporary_folders &&
        internal::remove_if_dead(temporary.path, temporary.owner,
                                 temporary.owner_description)) {
      continue;
    }
    s.leftovers.push_back(std::move(temporary));
  }
  if (s.options.remote.store) open_remote_tier();
}

void Checkpointer::open_remote_tier() {
  State& s = *state_;
  internal::TierProcess process;
  if (s.collectives) {
    process.index = s.collectives->process_index();
    process.count = s.collectives->process_count();
    process.primary = s.primary_host;
  }
  s.remote = std::make_unique<internal::RemoteTier>(
      s.options.remote, s.options.step_name_format, process,
      [this](int64_t step) {
        mark_persisted({step});
        drop_local_copies();
      });
  std::vector<CheckpointStep> remote = s.remote->list(directory_);
  std::lock_guard<std::mutex> lock(s.mutex);
  const std::set<int64_t> in_store =
      internal::merge_remote_steps(s.steps, std::move(remote));
  // What an earlier run committed here but did not persist (it died, or
  // its uploads failed) goes up now.
  for (const CheckpointStep& c : s.steps) {
    if (!c.local || in_store.count(c.step)) continue;
    if (!internal::read_step_folder(c.path, c.step).committed) continue;
    s.remote->upload(c.step, c.path, /*replace=*/false, /*no_wait=*/true);
  }
}

void Checkpointer::mark_persisted(const std::vector<int64_t>& steps) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  for (CheckpointStep& c : state_->steps) {
    c.remote |= std::find(steps.begin(), steps.end(), c.step) != steps.end();
  }
}

// Removes the local copies of persisted steps beyond the newest keep_local
// local ones (never the newest step, nor one being loaded).
void Checkpointer::drop_local_copies() {
  State& s = *state_;
  if (!s.options.remote.keep_local || !s.primary) return;
  std::vector<fs::path> doomed;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    int kept = 0;
    for (size_t i = s.steps.size(); i-- > 0;) {
      CheckpointStep& c = s.steps[i];
      if (!c.local) continue;
      if (kept < *s.options.remote.keep_local || !c.remote ||
          i + 1 == s.steps.size() || s.loading.count(c.step)) {
        ++kept;
        continue;
      }
      if (s.unread.erase(c.step)) {  // its details before its files go
        StepFolder folder = internal::read_step_folder(c.path, c.step);
        if (folder.committed) c = std::move(folder.checkpoint);
      }
      c.local = false;
      c.remote = true;
      doomed.push_back(c.path);
    }
  }
  for (const fs::path& path : doomed) remove_step_folder(path);
}

Checkpointer::~Checkpointer() {
  try {
    close();
  } catch (const std::exception& e) {
    internal::log(CKPT_LOG_ERROR, "closing the checkpointer of " +
                                      directory_.string() + ": " + e.what());
  }
}

bool Checkpointer::should_save(int64_t step) {
  return decide(step, std::nullopt);
}

// should_save(step), as if step `replacing` (one being overwritten) were
// not in the root.
bool Checkpointer::decide(int64_t step, std::optional<int64_t> replacing) {
  State& s = *state_;
  const bool many_processes =
      s.collectives && s.collectives->process_count() > 1;
  // The decision of a job is a collective, and so is the commit of a save
  // in flight, on its own thread: never both at once.
  if (many_processes) wait();
  // The step in flight counts from the moment its save started, as
  // Orbax's do: a root with a save in flight is no longer empty.
  std::vector<CheckpointStep> previous;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    read_details(
        s.steps, s.unread,
        replacing ||
            s.options.save_decision_policy->reads_older_step_details());
    previous = s.steps;
  }
  if (replacing) {
    previous.erase(std::remove_if(previous.begin(), previous.end(),
                                  [&](const CheckpointStep& c) {
                                    return c.step == *replacing;
                                  }),
                   previous.end());
  }
  if (s.has_in_flight) {
    CheckpointStep saving;
    saving.step = s.in_flight_step;
    saving.path = directory_ / s.options.step_name_format.name(saving.step);
    saving.time = s.in_flight_started;
    saving.in_flight = true;
    previous.push_back(std::move(saving));
  }
  std::optional<int64_t> newest;
  for (const CheckpointStep& c : previous) {
    if (!newest || c.step > *newest) newest = c.step;
  }
  bool local = false;
  const bool noticed = g_preempted.load() || s.preemption_agreed;
  if (!newest || step > *newest) {
    CheckpointStep candidate;
    candidate.step = step;
    candidate.path = directory_ / s.options.step_name_format.name(step);
    candidate.time = std::chrono::system_clock::now();
    DecisionContext context;
    context.is_saving_in_progress = is_saving_in_progress();
    context.reached_preemption = noticed && !s.preemption_saved;
    local = context.reached_preemption ||
            s.options.save_decision_policy->should_save(candidate, previous,
                                                        context);
  }
  if (!many_processes) {
    s.preemption_agreed = noticed;
    return local;
  }
  // Every process must decide alike: the primary's decision, or any
  // process's preemption notice.
  // The remote tier's reports travel with it.
  const std::vector<std::string> all = s.collectives->all_gather(
      std::string{local ? '1' : '0', noticed ? '1' : '0'} +
      (s.remote ? s.remote->report() : std::string()));
  bool decision = false;
  std::vector<std::string> reports;
  for (size_t p = 0; p < all.size(); ++p) {
    if (all[p].size() < 2) throw InternalError("bad should_save agreement");
    reports.push_back(all[p].substr(2));
    if (all[p][1] == '1') s.preemption_agreed = true;
    if (static_cast<int>(p) == s.primary_host && all[p][0] == '1') {
      decision = true;
    }
  }
  if (s.remote) mark_persisted(s.remote->absorb(reports));
  const bool unsaved_notice = s.preemption_agreed && !s.preemption_saved;
  return (decision || unsaved_notice) && (!newest || step > *newest);
}

namespace {

StepSaveOptions step_options(const std::optional<nlohmann::json>& metrics,
                             bool force) {
  StepSaveOptions options;
  options.metrics = metrics;
  options.force = force;
  return options;
}

}  // namespace

bool Checkpointer::save_pytree(int64_t step, const Value& tree,
                               const std::optional<nlohmann::json>& metrics,
                               bool force) {
  return save_pytree(step, tree, step_options(metrics, force));
}
bool Checkpointer::save_checkpointables(
    int64_t step, const Checkpointables& checkpointables,
    const std::optional<nlohmann::json>& metrics, bool force) {
  return save_checkpointables(step, checkpointables,
                              step_options(metrics, force));
}
bool Checkpointer::save_pytree_async(
    int64_t step, const Value& tree,
    const std::optional<nlohmann::json>& metrics, bool force) {
  return save_pytree_async(step, tree, step_options(metrics, force));
}
bool Checkpointer::save_checkpointables_async(
    int64_t step, const Checkpointables& checkpointables,
    const std::optional<nlohmann::json>& metrics, bool force) {
  return save_checkpointables_async(step, checkpointables,
                                    step_options(metrics, force));
}
bool Checkpointer::save_pytree(int64_t step, const Value& tree,
                               const StepSaveOptions& options) {
  return save(step, {{kDefaultCheckpointableName, tree}}, options,
              /*async=*/false);
}
bool Checkpointer::save_checkpointables(int64_t step,
                                        const Checkpointables& checkpointables,
                                        const StepSaveOptions& options) {
  return save(step, checkpointables, options, /*async=*/false);
}
bool Checkpointer::save_pytree_async(int64_t step, const Value& tree,
                                     const StepSaveOptions& options) {
  return save(step, {{kDefaultCheckpointableName, tree}}, options,
              /*async=*/true);
}
bool Checkpointer::save_checkpointables_async(
    int64_t step, const Checkpointables& checkpointables,
    const StepSaveOptions& options) {
  return save(step, checkpointables, options, /*async=*/true);
}

bool Checkpointer::save(int64_t step, const Checkpointables& checkpointables,
                        const StepSaveOptions& step_options, bool async) {
  State& s = *state_;
  if (s.closed) {
    throw InvalidArgumentError("the checkpointer of " + directory_.string() +
                               " is closed");
  }
  const std::optional<nlohmann::json>& metrics = step_options.metrics;
  if (metrics && !metrics->is_object()) {
    throw InvalidArgumentError("the metrics of step " + std::to_string(step) +
                               " must be a JSON object");
  }
  if (!step_options.custom_metadata.is_object()) {
    throw InvalidArgumentError("the custom metadata of step " +
                               std::to_string(step) + " must be a JSON object");
  }
  const fs::path path = directory_ / s.options.step_name_format.name(step);
  bool exists = false;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    const bool listed =
        std::any_of(s.steps.begin(), s.steps.end(),
                    [&](const CheckpointStep& c) { return c.step == step; });
    std::error_code ec;
    exists = listed || (s.has_in_flight && s.in_flight_step == step) ||
             fs::symlink_status(path, ec).type() != fs::file_type::not_found;
  }
  if (exists && !step_options.overwrite) {
    throw AlreadyExistsError("step " + std::to_string(step) +
                             " already exists: " + path.string() +
                             " (save with overwrite to replace it)");
  }
  // Its own save in flight commits before it is replaced.
  if (exists && s.has_in_flight && s.in_flight_step == step) wait();
  // Decided before waiting for the save in flight, as Orbax does: a
  // policy that skips while a save is in flight (continuous) never blocks.
  if (!decide(step, exists ? std::optional<int64_t>(step) : std::nullopt) &&
      !step_options.force) {
    return false;
  }
  const bool for_preemption = s.preemption_agreed && !s.preemption_saved;
  wait();  // one save in flight at most

  SaveOptions options;
  options.custom_metadata = step_options.custom_metadata;
  options.overwrite = exists;
  if (metrics && !metrics->empty()) options.metrics = *metrics;
  s.in_flight =
      ckpt::save_checkpointables_async(path, checkpointables, options);
  s.has_in_flight = true;
  s.in_flight_step = step;
  s.in_flight_started = std::chrono::system_clock::now();
  if (!async || for_preemption) {
    wait();
    if (for_preemption) s.preemption_saved = true;
  }
  return true;
}

std::vector<CheckpointStep> Checkpointer::checkpoints() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  read_details(state_->steps, state_->unread, /*all=*/true);
  return state_->steps;
}

std::optional<CheckpointStep> Checkpointer::latest() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  read_details(state_->steps, state_->unread, /*all=*/false);
  if (state_->steps.empty()) return std::nullopt;
  return state_->steps.back();
}

std::vector<TemporaryFolder> Checkpointer::leftover_temporaries() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->leftovers;
}

namespace {

// Marks a step as being loaded for the lifetime of the object, so that it
// is not deleted meanwhile.
class LoadingStep {
 public:
  LoadingStep(std::mutex& mutex, const std::vector<CheckpointStep>& steps,
              std::map<int64_t, int>& loading, std::optional<int64_t> step,
              const fs::path& root)
      : mutex_(mutex), loading_(loading) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = steps.end();
    if (step) {
      found = std::find_if(
          steps.begin(), steps.end(),
          [&](const CheckpointStep& c) { return c.step == *step; });
    } else if (!steps.empty()) {
      found = steps.end() - 1;
    }
    if (found == steps.end()) {
      throw NotFoundError(
          (step ? "step " + std::to_string(*step) + " is not a committed"
                : std::string("there is no committed")) +
          " checkpoint in " + root.string() +
          (steps.empty()
               ? " (it has none)"
               : " (committed steps: " + std::to_string(steps.front().step) +
                     " to " + std::to_string(steps.back().step) + ")"));
    }
    checkpoint_ = *found;
    ++loading_[checkpoint_.step];
  }
  ~LoadingStep() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (--loading_[checkpoint_.step] == 0) loading_.erase(checkpoint_.step);
  }
  const CheckpointStep& checkpoint() const { return checkpoint_; }

 private:
  std::mutex& mutex_;
  std::map<int64_t, int>& loading_;
  CheckpointStep checkpoint_;
};

}  // namespace

Value Checkpointer::load_pytree(std::optional<int64_t> step,
                                const Value* abstract_tree) {
  State& s = *state_;
  LoadingStep loading(s.mutex, s.steps, s.loading, step, directory_);
  const internal::StepCopy copy(s.remote.get(), loading.checkpoint(),
                                {kDefaultCheckpointableName});
  return load(copy.path(), abstract_tree);
}

Checkpointables Checkpointer::load_checkpointables(
    std::optional<int64_t> step, const Checkpointables& abstracts) {
  State& s = *state_;
  LoadingStep loading(s.mutex, s.steps, s.loading, step, directory_);
  std::vector<std::string> only;
  for (const auto& [name, abstract] : abstracts) only.push_back(name);
  const internal::StepCopy copy(s.remote.get(), loading.checkpoint(), only);
  return ckpt::load_checkpointables(copy.path(), abstracts);
}

Metadata Checkpointer::metadata(std::optional<int64_t> step) {
  State& s = *state_;
  LoadingStep loading(s.mutex, s.steps, s.loading, step, directory_);
  const internal::StepCopy copy(s.remote.get(), loading.checkpoint(),
                                {kDefaultCheckpointableName});
  return ckpt::metadata(copy.path());
}

CheckpointablesMetadata Checkpointer::checkpointables_metadata(
    std::optional<int64_t> step) {
  State& s = *state_;
  LoadingStep loading(s.mutex, s.steps, s.loading, step, directory_);
  const internal::StepCopy copy(s.remote.get(), loading.checkpoint(), {});
  return ckpt::checkpointables_metadata(copy.path());
}

RootMetadata Checkpointer::root_metadata() const {
  RootMetadata out;
  out.directory = directory_;
  out.custom_metadata = internal::read_root_metadata(directory_);
  return out;
}

bool Checkpointer::is_saving_in_progress() const {
  return state_->has_in_flight && !state_->in_flight.done();
}

namespace {

// The policy's answer for `steps`, never dropping the newest.
std::vector<bool> preserved(const PreservationPolicy& policy,
                            const std::vector<CheckpointStep>& steps) {
  std::vector<bool> keep = policy.should_preserve(steps, {});
  if (keep.size() != steps.size()) {
    throw InvalidArgumentError(
        "the preservation policy answered for " + std::to_string(keep.size()) +
        " checkpoints instead of " + std::to_string(steps.size()));
  }
  if (!keep.empty()) keep.back() = true;  // never the newest committed step
  return keep;
}

}  // namespace

void Checkpointer::wait() {
  State& s = *state_;
  if (!s.has_in_flight) return;
  s.has_in_flight = false;
  s.in_flight.result();  // throws the save's failure
  const fs::path path = s.in_flight.path();
  StepFolder committed = internal::read_step_folder(path, s.in_flight_step);
  if (!committed.committed) {
    throw InternalError(
        "step " + std::to_string(s.in_flight_step) +
        " committed but does not read back: " + committed.problem);
  }
  std::vector<CheckpointStep> doomed;
  bool replaced_remote = false;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    // An overwritten step replaces its old entry.
    s.steps.erase(std::remove_if(s.steps.begin(), s.steps.end(),
                                 [&](const CheckpointStep& c) {
                                   const bool same =
                                       c.step == committed.checkpoint.step;
                                   replaced_remote |= same && c.remote;
                                   return same;
                                 }),
                  s.steps.end());
    s.unread.erase(committed.checkpoint.step);
    s.steps.push_back(committed.checkpoint);
    std::stable_sort(s.steps.begin(), s.steps.end(),
                     [](const CheckpointStep& a, const CheckpointStep& b) {
                       return a.step < b.step;
                     });
    const PreservationPolicy& policy = *s.options.preservation_policy;
    if (policy.reads_older_step_details()) {
      read_details(s.steps, s.unread, /*all=*/true);
    }
    // Every process computes the same answer; only the primary deletes.
    std::vector<bool> keep = preserved(policy, s.steps);
    if (!s.unread.empty() &&
        std::find(keep.begin(), keep.end(), false) != keep.end()) {
      // Before deleting, every step counted must be a whole checkpoint, as
      // when the root is read in full (deleting costs more than reading).
      read_details(s.steps, s.unread, /*all=*/true);
      keep = preserved(policy, s.steps);
    }
    std::vector<CheckpointStep> kept;
    for (size_t i = 0; i < s.steps.size(); ++i) {
      if (keep[i] || s.loading.count(s.steps[i].step) > 0) {
        kept.push_back(s.steps[i]);  // a step being loaded waits its turn
      } else {
        doomed.push_back(s.steps[i]);
      }
    }
    s.steps = std::move(kept);
  }
  for (const CheckpointStep& old : doomed) {
    if (old.local && s.primary) remove_step_folder(old.path);
    // Also when its upload is still queued: the removal comes after it.
    if (s.remote) s.remote->remove(old.step);
  }
  // Waits only while max_pending_uploads uploads are queued.
  if (s.remote) {
    s.remote->upload(committed.checkpoint.step, path, replaced_remote);
  }
}

void Checkpointer::remove_step_folder(const fs::path& path) {
  // Renamed away first, so that it disappears at once; the temporary name
  // says whose it is, should this process die while removing it.
  const fs::path away = internal::temporary_path_for(path);
  std::error_code ec;
  fs::rename(path, away, ec);
  if (ec) {
    internal::log(CKPT_LOG_WARNING, "could not delete step folder " +
                                        path.string() + ": " + ec.message());
    return;
  }
  internal::remove_quietly(away);
}

void Checkpointer::wait_for_uploads() {
  State& s = *state_;
  if (!s.remote) return;
  if (!s.collectives || s.collectives->process_count() == 1) {
    s.remote->finish();
    return;
  }
  mark_persisted(s.remote->finish_job(*s.collectives, directory_));
}

void Checkpointer::close() {
  if (state_->closed) return;
  state_->closed = true;
  wait();
  wait_for_uploads();
}

void Checkpointer::reload() {
  State& s = *state_;
  internal::RootFolders listing =
      internal::list_root_folders(directory_, s.options.step_name_format);
  std::vector<CheckpointStep> remote;
  if (s.remote) remote = s.remote->list(directory_);
  std::lock_guard<std::mutex> lock(s.mutex);
  know_by_name(std::move(listing.steps), s.steps, s.unread);
  internal::merge_remote_steps(s.steps, std::move(remote));
}

bool Checkpointer::reached_preemption() const {
  return g_preempted.load() || state_->preemption_agreed;
}

bool Checkpointer::may_exit() const {
  return reached_preemption() && state_->preemption_saved;
}

}  // namespace ckpt
