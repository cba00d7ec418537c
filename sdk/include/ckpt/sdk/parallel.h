// ckpt/sdk/parallel.h -- one loop over many threads, for bulk work
// (reads, copies, checksums, transfers) of plugins and of the core alike.
#ifndef CKPT_SDK_PARALLEL_H_
#define CKPT_SDK_PARALLEL_H_

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace ckpt::sdk {

// Runs task(i) for every i in [0, count) on up to `threads` threads (the
// calling one included), each taking the next index. Returns once every
// started task has ended; rethrows the first exception a task threw, and
// then the indices not yet taken are not run.
inline void parallel_for(size_t count, size_t threads,
                         const std::function<void(size_t)>& task) {
  threads = std::min(threads, count);
  if (threads <= 1) {
    for (size_t i = 0; i < count; ++i) task(i);
    return;
  }
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::exception_ptr error;
  auto work = [&] {
    for (;;) {
      const size_t i = next.fetch_add(1);
      if (i >= count || failed.load()) return;
      try {
        task(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> helpers;
  try {
    for (size_t t = 1; t < threads; ++t) helpers.emplace_back(work);
  } catch (const std::system_error&) {
    // No more threads to be had: the ones started (and this one) do it all.
  }
  work();
  for (std::thread& t : helpers) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace ckpt::sdk

#endif  // CKPT_SDK_PARALLEL_H_
