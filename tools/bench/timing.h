// The timing helpers every benchmark program of tools/bench shares.
#ifndef CKPT_TOOLS_BENCH_TIMING_H_
#define CKPT_TOOLS_BENCH_TIMING_H_

#include <algorithm>
#include <chrono>
#include <vector>

namespace ckpt_bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The middle value (the upper one of an even count); `v` is not empty.
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace ckpt_bench

#endif  // CKPT_TOOLS_BENCH_TIMING_H_
