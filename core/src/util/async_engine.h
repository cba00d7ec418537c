// The core's background pool (Boost.Asio), shared by every handler's
// background tier and by async saves.
#ifndef CKPT_SRC_UTIL_ASYNC_ENGINE_H_
#define CKPT_SRC_UTIL_ASYNC_ENGINE_H_

#include <chrono>
#include <functional>

namespace ckpt::internal {

// Runs `work` on the pool. Exceptions escaping `work` are logged.
void post_background(std::function<void()> work);

// Runs `work` on the pool once `delay` has passed (a timer: no thread
// waits meanwhile).
void post_background_after(std::chrono::microseconds delay,
                           std::function<void()> work);

}  // namespace ckpt::internal

#endif  // CKPT_SRC_UTIL_ASYNC_ENGINE_H_
