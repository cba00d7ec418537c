// Orbax's save decision policies (ckpt/checkpointer.h): when to save.
#include <ckpt/checkpointer.h>
#include <ckpt/errors.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "training/policy_steps.h"

namespace ckpt {

using internal::contains;
using internal::seconds_between;
using internal::sorted;

SaveDecisionPolicyRef::SaveDecisionPolicyRef(
    std::shared_ptr<const SaveDecisionPolicy> policy)
    : policy_(std::move(policy)) {
  if (!policy_) throw InvalidArgumentError("a save decision policy is null");
}

ContinuousCheckpointingPolicy::ContinuousCheckpointingPolicy(
    std::optional<double> minimum_interval_secs)
    : minimum_interval_secs_(minimum_interval_secs) {
  if (minimum_interval_secs_ && !(*minimum_interval_secs_ >= 0)) {
    throw InvalidArgumentError(
        "ContinuousCheckpointingPolicy: minimum_interval_secs must be >= 0");
  }
}

bool ContinuousCheckpointingPolicy::should_save(
    const CheckpointStep& step, const std::vector<CheckpointStep>& previous,
    const DecisionContext& context) const {
  if (context.is_saving_in_progress) return false;
  if (previous.empty() || !minimum_interval_secs_) return true;
  return seconds_between(previous.back().time, step.time) >=
         *minimum_interval_secs_;
}

FixedIntervalPolicy::FixedIntervalPolicy(int64_t interval)
    : interval_(interval) {
  if (interval_ <= 0) {
    throw InvalidArgumentError("FixedIntervalPolicy: the interval must be > 0");
  }
}

bool FixedIntervalPolicy::should_save(const CheckpointStep& step,
                                      const std::vector<CheckpointStep>&,
                                      const DecisionContext&) const {
  return step.step % interval_ == 0;
}

SpecificStepsPolicy::SpecificStepsPolicy(std::vector<int64_t> steps)
    : steps_(sorted(std::move(steps))) {}

bool SpecificStepsPolicy::should_save(const CheckpointStep& step,
                                      const std::vector<CheckpointStep>&,
                                      const DecisionContext&) const {
  return contains(steps_, step.step);
}

bool InitialSavePolicy::should_save(const CheckpointStep&,
                                    const std::vector<CheckpointStep>& previous,
                                    const DecisionContext&) const {
  return previous.empty();
}

bool PreemptionCheckpointingPolicy::should_save(
    const CheckpointStep&, const std::vector<CheckpointStep>&,
    const DecisionContext& context) const {
  return context.reached_preemption;
}

AnySavePolicy::AnySavePolicy(std::vector<SaveDecisionPolicyRef> policies)
    : policies_(std::move(policies)) {}

bool AnySavePolicy::should_save(const CheckpointStep& step,
                                const std::vector<CheckpointStep>& previous,
                                const DecisionContext& context) const {
  return std::any_of(policies_.begin(), policies_.end(), [&](const auto& p) {
    return p->should_save(step, previous, context);
  });
}

bool AnySavePolicy::reads_older_step_details() const {
  return std::any_of(policies_.begin(), policies_.end(), [](const auto& p) {
    return p->reads_older_step_details();
  });
}

}  // namespace ckpt
