// Orbax's preservation policies (ckpt/checkpointer.h): which steps to keep.
#include <ckpt/checkpointer.h>
#include <ckpt/errors.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "training/policy_steps.h"

namespace ckpt {

using internal::contains;
using internal::seconds_between;
using internal::sorted;

PreservationPolicyRef::PreservationPolicyRef(
    std::shared_ptr<const PreservationPolicy> policy)
    : policy_(std::move(policy)) {
  if (!policy_) throw InvalidArgumentError("a preservation policy is null");
}

std::vector<bool> PreserveAll::should_preserve(
    const std::vector<CheckpointStep>& checkpoints,
    const PreservationContext&) const {
  return std::vector<bool>(checkpoints.size(), true);
}

LatestN::LatestN(size_t n) : n_(n) {}

std::vector<bool> LatestN::should_preserve(
    const std::vector<CheckpointStep>& checkpoints,
    const PreservationContext&) const {
  const size_t count = checkpoints.size();
  std::vector<bool> keep(count, false);
  for (size_t i = count > n_ ? count - n_ : 0; i < count; ++i) keep[i] = true;
  return keep;
}

EveryNSeconds::EveryNSeconds(double interval_secs)
    : interval_secs_(interval_secs) {
  if (!(interval_secs_ >= 0)) {
    throw InvalidArgumentError("EveryNSeconds: the interval must be >= 0");
  }
}

std::vector<bool> EveryNSeconds::should_preserve(
    const std::vector<CheckpointStep>& checkpoints,
    const PreservationContext&) const {
  std::vector<bool> keep(checkpoints.size(), false);
  const CheckpointStep* anchor = nullptr;
  for (size_t i = 0; i < checkpoints.size(); ++i) {
    if (!anchor ||
        seconds_between(anchor->time, checkpoints[i].time) >= interval_secs_) {
      keep[i] = true;
      anchor = &checkpoints[i];
    }
  }
  return keep;
}

namespace {

// Orbax's max_to_keep: of the steps `keep` marks, only the newest `max`.
void keep_newest(std::vector<bool>& keep, const std::optional<size_t>& max) {
  if (!max) return;
  size_t kept = 0;
  for (size_t i = keep.size(); i-- > 0;) {
    if (keep[i] && ++kept > *max) keep[i] = false;
  }
}

void check_interval(int64_t interval_steps, const char* policy) {
  if (interval_steps <= 0) {
    throw InvalidArgumentError(std::string(policy) +
                               ": the interval must be > 0");
  }
}

// The multiple of `n` (> 0) that step / n rounds to, ties to even, as
// Python's round(step / n), in integers.
int64_t closest_multiple(int64_t step, int64_t n) {
  int64_t q = step / n;
  int64_t r = step % n;
  if (r < 0) {  // floor division for negative steps
    --q;
    r += n;
  }
  // r > n - r, without overflow: round up; equal: to the even quotient.
  if (r > n - r || (r == n - r && q % 2 != 0)) ++q;
  return q;
}

}  // namespace

EveryNSteps::EveryNSteps(int64_t interval_steps, bool exact_interval,
                         std::optional<size_t> max_to_keep)
    : interval_steps_(interval_steps),
      exact_interval_(exact_interval),
      max_to_keep_(max_to_keep) {
  check_interval(interval_steps_, "EveryNSteps");
}

std::vector<bool> EveryNSteps::should_preserve(
    const std::vector<CheckpointStep>& checkpoints,
    const PreservationContext&) const {
  std::vector<bool> keep(checkpoints.size());
  std::optional<int64_t> previous;
  for (size_t i = 0; i < checkpoints.size(); ++i) {
    const int64_t step = checkpoints[i].step;
    if (exact_interval_) {
      keep[i] = step % interval_steps_ == 0;
    } else if (!previous || step - *previous >= interval_steps_) {
      keep[i] = true;
      previous = step;
    }
  }
  keep_newest(keep, max_to_keep_);
  return keep;
}

EveryNStepsClosest::EveryNStepsClosest(int64_t interval_steps,
                                       std::optional<size_t> max_to_keep)
    : interval_steps_(interval_steps), max_to_keep_(max_to_keep) {
  check_interval(interval_steps_, "EveryNStepsClosest");
}

std::vector<bool> EveryNStepsClosest::should_preserve(
    const std::vector<CheckpointStep>& checkpoints,
    const PreservationContext&) const {
  std::vector<bool> keep(checkpoints.size(), false);
  if (checkpoints.empty()) return keep;
  // multiple -> (index of the closest step, its distance)
  std::map<int64_t, std::pair<size_t, uint64_t>> best;
  for (size_t i = 0; i < checkpoints.size(); ++i) {
    const int64_t step = checkpoints[i].step;
    const int64_t k = closest_multiple(step, interval_steps_);
    const uint64_t distance =
        step >= k * interval_steps_
            ? static_cast<uint64_t>(step - k * interval_steps_)
            : static_cast<uint64_t>(k * interval_steps_ - step);
    auto [at, fresh] = best.try_emplace(k, i, distance);
    if (!fresh && distance <= at->second.second) at->second = {i, distance};
  }
  for (const auto& entry : best) keep[entry.second.first] = true;
  keep.back() = true;
  keep_newest(keep, max_to_keep_);
  return keep;
}

LatestDuration::LatestDuration(std::chrono::system_clock::duration duration)
    : duration_(duration) {
  if (duration_.count() < 0) {
    throw InvalidArgumentError("LatestDuration: the duration must be >= 0");
  }
}

std::vector<bool> LatestDuration::should_preserve(
    const std::vector<CheckpointStep>& checkpoints,
    const PreservationContext&) const {
  const auto now = std::chrono::system_clock::now();
  std::vector<bool> keep(checkpoints.size(), false);
  bool recent = false;
  for (size_t i = 0; i < checkpoints.size(); ++i) {
    recent = recent || now - checkpoints[i].time <= duration_;
    keep[i] = recent;
  }
  return keep;
}

CustomSteps::CustomSteps(std::vector<int64_t> steps)
    : steps_(sorted(std::move(steps))) {}

std::vector<bool> CustomSteps::should_preserve(
    const std::vector<CheckpointStep>& checkpoints,
    const PreservationContext&) const {
  std::vector<bool> keep(checkpoints.size());
  for (size_t i = 0; i < checkpoints.size(); ++i) {
    keep[i] = contains(steps_, checkpoints[i].step);
  }
  return keep;
}

BestN::BestN(MetricFn get_metric_fn, bool reverse, std::optional<size_t> n,
             bool keep_checkpoints_without_metrics)
    : get_metric_fn_(std::move(get_metric_fn)),
      reverse_(reverse),
      n_(n),
      keep_without_metrics_(keep_checkpoints_without_metrics) {
  if (!get_metric_fn_) throw InvalidArgumentError("BestN: no metric function");
}

BestN::BestN(const std::string& metric_name, bool reverse,
             std::optional<size_t> n, bool keep_checkpoints_without_metrics)
    : BestN(
          [metric_name](const nlohmann::json& metrics) {
            return metrics.at(metric_name).get<double>();
          },
          reverse, n, keep_checkpoints_without_metrics) {
  metric_name_ = metric_name;
}

std::vector<bool> BestN::should_preserve(
    const std::vector<CheckpointStep>& checkpoints,
    const PreservationContext&) const {
  const size_t count = checkpoints.size();
  if (!n_ || count <= *n_) return std::vector<bool>(count, true);
  std::vector<bool> keep(count, false);
  std::vector<std::pair<double, size_t>> ranked;  // metric, index
  for (size_t i = 0; i < count; ++i) {
    std::optional<double> metric;
    const nlohmann::json& metrics = checkpoints[i].metrics;
    if (!metrics.is_null()) {
      try {
        metric = get_metric_fn_(metrics);
      } catch (const std::exception&) {
        // a step without this metric: as one without metrics
      }
    }
    if (metric && !std::isnan(*metric)) {
      ranked.emplace_back(*metric, i);
    } else {
      keep[i] = keep_without_metrics_;
    }
  }
  // Ascending (reverse: descending), ties in step order; the last n win.
  std::stable_sort(ranked.begin(), ranked.end(),
                   [&](const auto& a, const auto& b) {
                     return reverse_ ? a.first > b.first : a.first < b.first;
                   });
  const size_t first = ranked.size() > *n_ ? ranked.size() - *n_ : 0;
  for (size_t r = first; r < ranked.size(); ++r) keep[ranked[r].second] = true;
  return keep;
}

AnyPreservationPolicy::AnyPreservationPolicy(
    std::vector<PreservationPolicyRef> policies)
    : policies_(std::move(policies)) {}

std::vector<bool> AnyPreservationPolicy::should_preserve(
    const std::vector<CheckpointStep>& checkpoints,
    const PreservationContext& context) const {
  std::vector<bool> keep(checkpoints.size(), false);
  for (const auto& policy : policies_) {
    const std::vector<bool> one = policy->should_preserve(checkpoints, context);
    if (one.size() != keep.size()) {
      throw InvalidArgumentError(
          "a preservation policy answered for " + std::to_string(one.size()) +
          " checkpoints instead of " + std::to_string(keep.size()));
    }
    for (size_t i = 0; i < keep.size(); ++i) keep[i] = keep[i] || one[i];
  }
  return keep;
}

bool AnyPreservationPolicy::reads_older_step_details() const {
  return std::any_of(policies_.begin(), policies_.end(), [](const auto& p) {
    return p->reads_older_step_details();
  });
}

}  // namespace ckpt
