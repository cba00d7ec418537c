// What the save decision and the preservation policies share.
#ifndef CKPT_SRC_TRAINING_POLICY_STEPS_H_
#define CKPT_SRC_TRAINING_POLICY_STEPS_H_

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

namespace ckpt::internal {

inline double seconds_between(std::chrono::system_clock::time_point from,
                              std::chrono::system_clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

inline std::vector<int64_t> sorted(std::vector<int64_t> steps) {
  std::sort(steps.begin(), steps.end());
  return steps;
}

inline bool contains(const std::vector<int64_t>& sorted_steps, int64_t step) {
  return std::binary_search(sorted_steps.begin(), sorted_steps.end(), step);
}

}  // namespace ckpt::internal

#endif  // CKPT_SRC_TRAINING_POLICY_STEPS_H_
