// ckpt/checkpointer.h -- a training loop's checkpoints: a root folder of
// numbered steps, when to save, which steps to keep, resuming from the
// latest, and a last save when the job is told to stop (Orbax v1's
// training.Checkpointer).
//
//   ckpt::CheckpointerOptions options;
//   options.save_decision_policy = ckpt::FixedIntervalPolicy(100);
//   options.preservation_policy = ckpt::AnyPreservationPolicy(
//       {ckpt::LatestN(3), ckpt::BestN("loss", /*reverse=*/true, 2)});
//   options.handle_preemption_signals = true;
//   ckpt::Checkpointer checkpointer("runs/7", options);
//   int64_t step = 0;
//   if (auto latest = checkpointer.latest()) {
//     state = checkpointer.load_pytree(latest->step);
//     step = latest->step;
//   }
//   for (++step; step <= last; ++step) {
//     train(state);
//     checkpointer.save_pytree_async(step, state, {{"loss", loss}});
//     if (checkpointer.may_exit()) return 0;  // preempted, and saved
//   }
//   checkpointer.close();
//
// Step folders are named as Orbax names them (StepNameFormat): a root
// written by Python Orbax's checkpoint manager lists and loads here, and
// the other way round.
//
// Policies (after Orbax's, same names and meanings; they compose with
// AnySavePolicy / AnyPreservationPolicy, and callers may write their own by
// deriving from SaveDecisionPolicy / PreservationPolicy):
//   save:  ContinuousCheckpointingPolicy, FixedIntervalPolicy,
//          SpecificStepsPolicy, InitialSavePolicy,
//          PreemptionCheckpointingPolicy, AnySavePolicy
//   keep:  PreserveAll, LatestN, EveryNSeconds, EveryNSteps,
//          EveryNStepsClosest, LatestDuration, CustomSteps, BestN,
//          AnyPreservationPolicy
//
// Guarantees beyond Orbax's:
//  - At most one save is in flight; a save waits for the previous commit.
//  - A step is deleted only after a newer step committed, never the newest
//    committed step (whatever the preservation policy says), and never
//    while this process loads it. A deleted step disappears at once (it is
//    renamed away, then removed).
//  - Opening a root removes the temporary folders of saves that died on
//    this host since its last boot (their process is gone); those of live
//    processes, other hosts or earlier boots are only reported
//    (leftover_temporaries(); `ckpt ls` shows them too).
//
// Thread safety: one thread drives a Checkpointer (saves, should_save,
// wait, close); latest(), checkpoints() and the loads may also be called
// from other threads.
#ifndef CKPT_CHECKPOINTER_H_
#define CKPT_CHECKPOINTER_H_

#include <ckpt/checkpoint.h>
#include <ckpt/export.h>
#include <ckpt/remote.h>
#include <ckpt/value.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace ckpt {

// One checkpoint of a root, as policies and callers see it (Orbax's
// CheckpointMetadata / PolicyCheckpointInfo).
struct CKPT_API CheckpointStep {
  int64_t step = 0;
  std::filesystem::path path;
  // When it was committed (_CHECKPOINT_METADATA; the folder's modification
  // time when that records none). For the step a policy is asked about:
  // now.
  std::chrono::system_clock::time_point time;
  // The metrics saved with it (the `metrics` checkpointable); null when
  // none were.
  nlohmann::json metrics;
  // Bytes of all its files, when measured: list_checkpoint_root with
  // `with_sizes` walks every file of every step, so nothing else does.
  std::optional<uint64_t> size_bytes;
  // Still being saved (not committed): only in what a save decision policy
  // sees, last, with `time` the moment its save started.
  bool in_flight = false;
  // Where it is (RemoteTierOptions): on the local disk, persisted in the
  // remote store, or both.
  bool local = true;
  bool remote = false;
};

// ---- When to save ---------------------------------------------------------

struct CKPT_API DecisionContext {
  bool is_saving_in_progress = false;
  // A preemption notice arrived and its checkpoint is not yet written.
  bool reached_preemption = false;
};

class CKPT_API SaveDecisionPolicy {
 public:
  virtual ~SaveDecisionPolicy() = default;
  // Whether to save `step` (its time: now; no metrics), given the
  // committed steps, ascending, and last the step being saved, if one is
  // (`in_flight`). Called only for steps newer than all of them.
  virtual bool should_save(const CheckpointStep& step,
                           const std::vector<CheckpointStep>& previous_steps,
                           const DecisionContext& context) const = 0;
  // Whether the policy reads `time` or `metrics` of a step other than the
  // newest committed one. A Checkpointer reads those from a step's folder
  // only when a policy (or checkpoints()) needs them, so that a root of
  // thousands of steps opens at once: a policy that answers false may see
  // them unset on older steps. The default is true; each built-in policy
  // answers for what it reads.
  virtual bool reads_older_step_details() const { return true; }
};

// A SaveDecisionPolicy held by value: any policy converts to it.
class CKPT_API SaveDecisionPolicyRef {
 public:
  template <typename P, typename = std::enable_if_t<std::is_base_of_v<
                            SaveDecisionPolicy, std::decay_t<P>>>>
  SaveDecisionPolicyRef(P policy)  // NOLINT: implicit by design
      : policy_(std::make_shared<std::decay_t<P>>(std::move(policy))) {}
  SaveDecisionPolicyRef(std::shared_ptr<const SaveDecisionPolicy> policy);
  const SaveDecisionPolicy& operator*() const { return *policy_; }
  const SaveDecisionPolicy* operator->() const { return policy_.get(); }

 private:
  std::shared_ptr<const SaveDecisionPolicy> policy_;
};

// Saves whenever no save is in flight and, with a minimum interval, at
// least that many seconds passed since the newest committed step.
class CKPT_API ContinuousCheckpointingPolicy final : public SaveDecisionPolicy {
 public:
  explicit ContinuousCheckpointingPolicy(
      std::optional<double> minimum_interval_secs = std::nullopt);
  bool should_save(const CheckpointStep& step,
                   const std::vector<CheckpointStep>& previous_steps,
                   const DecisionContext& context) const override;
  bool reads_older_step_details() const override { return false; }

 private:
  std::optional<double> minimum_interval_secs_;
};

// Saves steps that are multiples of `interval` (> 0).
class CKPT_API FixedIntervalPolicy final : public SaveDecisionPolicy {
 public:
  explicit FixedIntervalPolicy(int64_t interval);
  bool should_save(const CheckpointStep& step,
                   const std::vector<CheckpointStep>& previous_steps,
                   const DecisionContext& context) const override;
  bool reads_older_step_details() const override { return false; }

 private:
  int64_t interval_;
};

// Saves exactly these steps.
class CKPT_API SpecificStepsPolicy final : public SaveDecisionPolicy {
 public:
  explicit SpecificStepsPolicy(std::vector<int64_t> steps);
  bool should_save(const CheckpointStep& step,
                   const std::vector<CheckpointStep>& previous_steps,
                   const DecisionContext& context) const override;
  bool reads_older_step_details() const override { return false; }

 private:
  std::vector<int64_t> steps_;  // sorted
};

// Saves when the root has no committed step yet.
class CKPT_API InitialSavePolicy final : public SaveDecisionPolicy {
 public:
  bool should_save(const CheckpointStep& step,
                   const std::vector<CheckpointStep>& previous_steps,
                   const DecisionContext& context) const override;
  bool reads_older_step_details() const override { return false; }
};

// Saves at the first step after a preemption notice.
class CKPT_API PreemptionCheckpointingPolicy final : public SaveDecisionPolicy {
 public:
  bool should_save(const CheckpointStep& step,
                   const std::vector<CheckpointStep>& previous_steps,
                   const DecisionContext& context) const override;
  bool reads_older_step_details() const override { return false; }
};

// Saves when any of its policies says so.
class CKPT_API AnySavePolicy final : public SaveDecisionPolicy {
 public:
  explicit AnySavePolicy(std::vector<SaveDecisionPolicyRef> policies);
  bool should_save(const CheckpointStep& step,
                   const std::vector<CheckpointStep>& previous_steps,
                   const DecisionContext& context) const override;
  bool reads_older_step_details() const override;

 private:
  std::vector<SaveDecisionPolicyRef> policies_;
};

// ---- Which steps to keep --------------------------------------------------

struct PreservationContext {};

class CKPT_API PreservationPolicy {
 public:
  virtual ~PreservationPolicy() = default;
  // For each of `checkpoints` (committed, ascending by step), whether to
  // keep it. Returns exactly one answer per checkpoint.
  virtual std::vector<bool> should_preserve(
      const std::vector<CheckpointStep>& checkpoints,
      const PreservationContext& context) const = 0;
  // The policy as JSON (preservation_policy_from_json reads it back): what
  // a Checkpointer records at its root, so that `ckpt ls` can show which
  // step each policy keeps. Null for a policy that JSON cannot describe:
  // one of your own, or BestN with a metric function.
  virtual nlohmann::json to_json() const { return nullptr; }
  // Whether the policy reads `time` or `metrics` of a step other than the
  // newest committed one. A Checkpointer reads those from a step's folder
  // only when a policy (or checkpoints()) needs them, so that a root of
  // thousands of steps opens at once: a policy that answers false may see
  // them unset on older steps. The default is true; each built-in policy
  // answers for what it reads.
  virtual bool reads_older_step_details() const { return true; }
};

// A PreservationPolicy held by value: any policy converts to it.
class CKPT_API PreservationPolicyRef {
 public:
  template <typename P, typename = std::enable_if_t<std::is_base_of_v<
                            PreservationPolicy, std::decay_t<P>>>>
  PreservationPolicyRef(P policy)  // NOLINT: implicit by design
      : policy_(std::make_shared<std::decay_t<P>>(std::move(policy))) {}
  PreservationPolicyRef(std::shared_ptr<const PreservationPolicy> policy);
  const PreservationPolicy& operator*() const { return *policy_; }
  const PreservationPolicy* operator->() const { return policy_.get(); }

 private:
  std::shared_ptr<const PreservationPolicy> policy_;
};

class CKPT_API PreserveAll final : public PreservationPolicy {
 public:
  std::vector<bool> should_preserve(
      const std::vector<CheckpointStep>& checkpoints,
      const PreservationContext& context) const override;
  nlohmann::json to_json() const override;
  bool reads_older_step_details() const override { return false; }
};

// The newest `n` steps (all of them when there are at most n).
class CKPT_API LatestN final : public PreservationPolicy {
 public:
  explicit LatestN(size_t n);
  std::vector<bool> should_preserve(
      const std::vector<CheckpointStep>& checkpoints,
      const PreservationContext& context) const override;
  nlohmann::json to_json() const override;
  bool reads_older_step_details() const override { return false; }

 private:
  size_t n_;
};

// The oldest step, then each step committed at least `interval_secs` after
// the last step kept before it.
class CKPT_API EveryNSeconds final : public PreservationPolicy {
 public:
  explicit EveryNSeconds(double interval_secs);
  std::vector<bool> should_preserve(
      const std::vector<CheckpointStep>& checkpoints,
      const PreservationContext& context) const override;
  nlohmann::json to_json() const override;

 private:
  double interval_secs_;
};

// Steps that are multiples of `interval_steps` (> 0); or, without
// `exact_interval`, the oldest step, then each step at least
// interval_steps after the last one kept before it. With `max_to_keep`,
// only the newest that many of those.
class CKPT_API EveryNSteps final : public PreservationPolicy {
 public:
  explicit EveryNSteps(int64_t interval_steps, bool exact_interval = true,
                       std::optional<size_t> max_to_keep = std::nullopt);
  std::vector<bool> should_preserve(
      const std::vector<CheckpointStep>& checkpoints,
      const PreservationContext& context) const override;
  nlohmann::json to_json() const override;
  bool reads_older_step_details() const override { return false; }

 private:
  int64_t interval_steps_;
  bool exact_interval_;
  std::optional<size_t> max_to_keep_;
};

// For each multiple k * interval_steps (> 0), the step closest to it (the
// newer of two equally close), and always the newest step: no drift when
// steps are irregular. A step belongs to the multiple its step /
// interval_steps rounds to, ties to the even multiple (as Python's
// round()). With `max_to_keep`, only the newest that many of those.
class CKPT_API EveryNStepsClosest final : public PreservationPolicy {
 public:
  explicit EveryNStepsClosest(int64_t interval_steps,
                              std::optional<size_t> max_to_keep = std::nullopt);
  std::vector<bool> should_preserve(
      const std::vector<CheckpointStep>& checkpoints,
      const PreservationContext& context) const override;
  nlohmann::json to_json() const override;
  bool reads_older_step_details() const override { return false; }

 private:
  int64_t interval_steps_;
  std::optional<size_t> max_to_keep_;
};

// The steps committed within `duration` (>= 0) of now, and every step
// after the first of them.
class CKPT_API LatestDuration final : public PreservationPolicy {
 public:
  explicit LatestDuration(std::chrono::system_clock::duration duration);
  std::vector<bool> should_preserve(
      const std::vector<CheckpointStep>& checkpoints,
      const PreservationContext& context) const override;
  nlohmann::json to_json() const override;

 private:
  std::chrono::system_clock::duration duration_;
};

// Exactly these steps.
class CKPT_API CustomSteps final : public PreservationPolicy {
 public:
  explicit CustomSteps(std::vector<int64_t> steps);
  std::vector<bool> should_preserve(
      const std::vector<CheckpointStep>& checkpoints,
      const PreservationContext& context) const override;
  nlohmann::json to_json() const override;
  bool reads_older_step_details() const override { return false; }

 private:
  std::vector<int64_t> steps_;  // sorted
};

// The best `n` steps by a metric. As in Orbax, the steps are ordered by
// the metric ascending (`reverse`: descending) and the last n kept: the n
// largest values, or with reverse = true the n smallest (a loss). Equal
// values keep step order, so the newer of two equal steps wins the last
// place. Steps without metrics (or whose metric function throws or
// returns NaN) are kept when `keep_checkpoints_without_metrics`, else not
// kept; they do not count towards n. No n: every step is kept.
class CKPT_API BestN final : public PreservationPolicy {
 public:
  using MetricFn = std::function<double(const nlohmann::json& metrics)>;
  explicit BestN(MetricFn get_metric_fn, bool reverse = false,
                 std::optional<size_t> n = std::nullopt,
                 bool keep_checkpoints_without_metrics = true);
  // The metric is the number metrics[metric_name].
  explicit BestN(const std::string& metric_name, bool reverse = false,
                 std::optional<size_t> n = std::nullopt,
                 bool keep_checkpoints_without_metrics = true);
  std::vector<bool> should_preserve(
      const std::vector<CheckpointStep>& checkpoints,
      const PreservationContext& context) const override;
  nlohmann::json to_json() const override;

 private:
  MetricFn get_metric_fn_;
  std::optional<std::string> metric_name_;  // when made from a name
  bool reverse_;
  std::optional<size_t> n_;
  bool keep_without_metrics_;
};

// Keeps a step when any of its policies does.
class CKPT_API AnyPreservationPolicy final : public PreservationPolicy {
 public:
  explicit AnyPreservationPolicy(std::vector<PreservationPolicyRef> policies);
  std::vector<bool> should_preserve(
      const std::vector<CheckpointStep>& checkpoints,
      const PreservationContext& context) const override;
  nlohmann::json to_json() const override;
  bool reads_older_step_details() const override;

 private:
  std::vector<PreservationPolicyRef> policies_;
};

// A policy from its JSON (PreservationPolicy::to_json): an object whose
// "policy" names the class and whose other members are its arguments, by
// the names the constructors give them; durations in seconds
// ("duration_secs"), BestN's metric by name ("metric"). For example
// {"policy": "AnyPreservationPolicy", "policies": [{"policy": "LatestN",
// "n": 3}, {"policy": "BestN", "metric": "loss", "reverse": true, "n": 1}]}.
// InvalidArgumentError naming the member that is wrong.
CKPT_API PreservationPolicyRef
preservation_policy_from_json(const nlohmann::json& policy);

// The preservation policy a Checkpointer last opened on `root` recorded
// (<root>/.ckpt_preservation_policy.json): its to_json(), null
// when JSON cannot describe it; nullopt when none is recorded (a root of
// Python Orbax's). DataLossError naming the file when it is damaged.
CKPT_API std::optional<nlohmann::json> recorded_preservation_policy(
    const std::filesystem::path& root);

// ---- Step folders ---------------------------------------------------------

// Orbax's standard step names: "<prefix>_" when there is a prefix, then the
// step, zero-padded to `fixed_length` digits when set. Step 5: "5",
// "ckpt_5", "00000005", "ckpt_00000005".
struct CKPT_API StepNameFormat {
  std::string prefix;
  std::optional<int> fixed_length;

  // InvalidArgumentError unless the prefix is one plain, visible name of at
  // most 128 bytes and fixed_length (if set) is within 1..64.
  void check() const;
  // The folder name of `step` (>= 0), after check().
  std::string name(int64_t step) const;
  // The step a folder name stands for, as Orbax reads it: the whole name
  // must match; no leading zeros unless fixed_length (then at least that
  // many digits). nullopt otherwise.
  std::optional<int64_t> parse(const std::string& name) const;
};

// A folder of a root that is not (yet) a checkpoint: the temporary folder
// of a save in flight or of one that died.
struct CKPT_API TemporaryFolder {
  enum class Owner {
    kGone,       // its save died on this host since the last boot
    kAlive,      // its process still runs
    kOtherHost,  // written from another host (or its boot could not be told)
    kOtherBoot,  // written on this host before its last boot
    kUnknown,    // made by another program (Python Orbax) or too damaged
  };
  std::filesystem::path path;
  Owner owner = Owner::kUnknown;
  std::string owner_description;  // "pid 123 on host h"
};

struct CKPT_API StepFolder {
  CheckpointStep checkpoint;
  bool committed = false;
  std::string problem;  // why it is not a complete checkpoint
};

struct CKPT_API RootListing {
  StepNameFormat format;
  std::vector<StepFolder> steps;  // ascending
  std::vector<TemporaryFolder> temporaries;
};

// Reads a root of step folders in `format` (nullopt: the format of the
// folders found there, plain numbers when there are none). Touches nothing.
// Reads each step's _CHECKPOINT_METADATA; `with_sizes` also walks its files
// for size_bytes (which then takes a stat per file). NotFoundError when
// `root` does not exist.
CKPT_API RootListing
list_checkpoint_root(const std::filesystem::path& root,
                     const std::optional<StepNameFormat>& format = std::nullopt,
                     bool with_sizes = false);

// ---- The remote tier -----------------------------------------------------

// A Checkpointer's steps beyond the local disk. Each step commits locally
// as without it; a background uploader then persists it to `store` under
// its step name (ckpt/remote.h: its files first, its commit record last,
// so that a reader of the store never sees a partial step). checkpoints()
// and latest() cover the steps of both places (CheckpointStep::local and
// ::remote say which), and a step only in the store is downloaded when it
// is loaded (only the checkpointables the load asks for). The preservation
// policy prunes both places. In a job of many processes each process
// uploads the files it wrote (the primary those written for all), and the
// primary commits a step once all parts are up: it learns that at the
// job's next should_save() or wait_for_uploads(), which every process
// calls; only the primary prunes.
struct CKPT_API RemoteTierOptions {
  // E.g. ckpt::s3_store("s3://bucket/run") (ckpt/s3.h); null: no remote
  // tier.
  std::shared_ptr<RemoteStore> store;
  // Once persisted, local copies beyond the newest `keep_local` local steps
  // are removed (never one not yet persisted); nullopt: they stay.
  std::optional<int> keep_local;
  // Committed steps waiting for their upload, at most: a save that would
  // make more waits for the oldest upload first. The only time a save
  // waits for the remote tier.
  int max_pending_uploads = 2;
  RemoteCopyOptions copy;
};

// ---- The Checkpointer -----------------------------------------------------

struct CKPT_API CheckpointerOptions {
  // Orbax's default: the first step, then whenever no save is in flight,
  // and at a preemption.
  SaveDecisionPolicyRef save_decision_policy =
      AnySavePolicy({InitialSavePolicy(), ContinuousCheckpointingPolicy(),
                     PreemptionCheckpointingPolicy()});
  PreservationPolicyRef preservation_policy = PreserveAll();
  StepNameFormat step_name_format;
  // Installs a SIGTERM and SIGINT handler that only notes the preemption
  // (request_preemption); a second signal ends the process as if none was
  // installed.
  bool handle_preemption_signals = false;
  // Remove the temporary folders of dead saves when the root is opened.
  bool cleanup_temporary_folders = true;
  // The root's own custom metadata (a JSON object), as Orbax's
  // Checkpointer(custom_metadata=...): written once, by the primary host,
  // to <root>/metadata/_ROOT_METADATA when the root has none yet (a root
  // keeps what its first run wrote); empty: none is written. Read it back
  // with root_metadata(). A step's own is StepSaveOptions::custom_metadata.
  nlohmann::json custom_metadata = nlohmann::json::object();
  // Steps persisted beyond the local disk too (see RemoteTierOptions).
  RemoteTierOptions remote;
};

// How one step is saved (Orbax's Checkpointer.save arguments).
struct CKPT_API StepSaveOptions {
  // A JSON object, saved as the `metrics` checkpointable.
  std::optional<nlohmann::json> metrics;
  // Save whatever the save decision policy says.
  bool force = false;
  // Replace the step if it exists. Unlike Orbax, which deletes the old step
  // first, the old step stays loadable until the new one commits, and is
  // kept when the policy skips the save.
  bool overwrite = false;
  // A JSON object stored in this step's _CHECKPOINT_METADATA.
  nlohmann::json custom_metadata = nlohmann::json::object();
};

// The root's metadata (Orbax's RootMetadata).
struct CKPT_API RootMetadata {
  std::filesystem::path directory;
  nlohmann::json custom_metadata = nlohmann::json::object();
};

// What the signal handler does: marks the process preempted. Safe to call
// from a signal handler.
CKPT_API void request_preemption() noexcept;

class CKPT_API Checkpointer {
 public:
  // Opens (and makes) the root `directory`, reads its steps and removes
  // leftover temporary folders of dead saves (see above). With a
  // multi-process Context (ckpt/context.h) every process constructs one;
  // decisions are agreed on, and only the primary host deletes.
  explicit Checkpointer(std::filesystem::path directory,
                        CheckpointerOptions options = {});
  // close(); errors are logged.
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  const std::filesystem::path& directory() const { return directory_; }

  // Whether a save of `step` would be made now: false for steps not newer
  // than the newest committed one (or the one in flight); otherwise the
  // save decision policy, or a preemption notice not yet saved for. In a
  // job of many processes the decision is a collective: it first waits for
  // the save in flight (so the continuous policy saves every step there).
  bool should_save(int64_t step);

  // Save `step` when should_save(step) or `force`; return whether a save
  // was made (sync: committed) or started (async). `metrics` (a JSON
  // object) is saved as the `metrics` checkpointable. The decision is made
  // first (a policy may skip while a save is in flight); a save that is
  // made then waits for the one in flight, rethrowing its failure (the new
  // save is then not started). AlreadyExistsError when the step exists or
  // is in flight. A save made for a preemption is waited for even when
  // async: then may_exit() is true.
  bool save_pytree(int64_t step, const Value& tree,
                   const std::optional<nlohmann::json>& metrics = std::nullopt,
                   bool force = false);
  bool save_checkpointables(
      int64_t step, const Checkpointables& checkpointables,
      const std::optional<nlohmann::json>& metrics = std::nullopt,
      bool force = false);
  bool save_pytree_async(
      int64_t step, const Value& tree,
      const std::optional<nlohmann::json>& metrics = std::nullopt,
      bool force = false);
  bool save_checkpointables_async(
      int64_t step, const Checkpointables& checkpointables,
      const std::optional<nlohmann::json>& metrics = std::nullopt,
      bool force = false);
  // The same, with every option of a step's save (metrics, force,
  // overwrite, custom metadata). With `overwrite`, an existing step is no
  // AlreadyExistsError: the policy decides as if it were not there (force
  // skips it), a step in flight is waited for first, and the new step
  // replaces the old one at its commit.
  bool save_pytree(int64_t step, const Value& tree,
                   const StepSaveOptions& options);
  bool save_checkpointables(int64_t step,
                            const Checkpointables& checkpointables,
                            const StepSaveOptions& options);
  bool save_pytree_async(int64_t step, const Value& tree,
                         const StepSaveOptions& options);
  bool save_checkpointables_async(int64_t step,
                                  const Checkpointables& checkpointables,
                                  const StepSaveOptions& options);

  // The committed steps, ascending, and the newest of them.
  std::vector<CheckpointStep> checkpoints() const;
  std::optional<CheckpointStep> latest() const;
  // Temporary folders found when the root was opened and not removed.
  std::vector<TemporaryFolder> leftover_temporaries() const;

  // Loads `step` (default: the newest committed), as ckpt::load /
  // ckpt::load_checkpointables. NotFoundError naming the step when it is
  // not committed.
  Value load_pytree(std::optional<int64_t> step = std::nullopt,
                    const Value* abstract_tree = nullptr);
  Checkpointables load_checkpointables(
      std::optional<int64_t> step = std::nullopt,
      const Checkpointables& abstracts = {});
  // What `step` (default: the newest committed) holds, without loading it,
  // as ckpt::metadata / ckpt::checkpointables_metadata: its checkpoint
  // metadata (times, metrics, custom metadata) and the checkpointables'.
  Metadata metadata(std::optional<int64_t> step = std::nullopt);
  CheckpointablesMetadata checkpointables_metadata(
      std::optional<int64_t> step = std::nullopt);
  // The root's custom metadata (CheckpointerOptions::custom_metadata, as
  // the root's first run wrote it; empty when it has none). DataLossError
  // naming the file when it is damaged.
  RootMetadata root_metadata() const;

  bool is_saving_in_progress() const;
  // Waits for the save in flight to commit and applies the preservation
  // policy; rethrows the save's failure.
  void wait();
  // Waits until every committed step is persisted in the remote tier (and
  // the pruning there is done); rethrows the first upload failure since the
  // last call (the step stays local, and is uploaded again when a
  // Checkpointer next opens the root). Returns at once without a remote
  // tier. In a job of many processes every process calls it (close() does).
  void wait_for_uploads();
  // wait(), wait_for_uploads(), then no more saves.
  void close();
  // Re-reads the root (steps another process added or removed).
  void reload();

  // A preemption notice arrived (signal or request_preemption).
  bool reached_preemption() const;
  // A preemption notice arrived and a step saved after it has committed:
  // the job may exit now without losing work.
  bool may_exit() const;

 private:
  struct State;
  std::filesystem::path directory_;
  std::unique_ptr<State> state_;

  bool save(int64_t step, const Checkpointables& checkpointables,
            const StepSaveOptions& options, bool async);
  void open_remote_tier();
  void drop_local_copies();
  void mark_persisted(const std::vector<int64_t>& steps);
  static void remove_step_folder(const std::filesystem::path& path);
  bool decide(int64_t step, std::optional<int64_t> replacing);
};

}  // namespace ckpt

#endif  // CKPT_CHECKPOINTER_H_
