#include "util/async_engine.h"

#include <ckpt/handler.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <exception>
#include <memory>
#include <thread>

#include "util/logging.h"

namespace ckpt::internal {

namespace {

// Never destroyed: background work may still be finishing while static
// destructors run, and joining from a destructor at exit can deadlock with
// a plugin's own static state (or hang for good behind a handler that
// never ends). Saves in flight are waited for at exit, with a deadline,
// by save.cpp's wait_at_exit, which names what it abandons; threads still
// running then end with the process.
boost::asio::thread_pool& pool() {
  static auto* p = new boost::asio::thread_pool(
      std::max(4u, std::thread::hardware_concurrency() * 2));
  return *p;
}

}  // namespace

namespace {

void run_logged(const std::function<void()>& work) {
  try {
    work();
  } catch (const std::exception& e) {
    log(CKPT_LOG_ERROR, std::string("background work failed: ") + e.what());
  } catch (...) {
    log(CKPT_LOG_ERROR, "background work failed");
  }
}

}  // namespace

void post_background(std::function<void()> work) {
  boost::asio::post(pool(), [work = std::move(work)] { run_logged(work); });
}

void post_background_after(std::chrono::microseconds delay,
                           std::function<void()> work) {
  auto timer =
      std::make_shared<boost::asio::steady_timer>(pool().get_executor(), delay);
  timer->async_wait(
      [timer, work = std::move(work)](const boost::system::error_code&) {
        run_logged(work);
      });
}

}  // namespace ckpt::internal

namespace ckpt {

std::future<void> run_in_background(std::function<void()> work) {
  auto promise = std::make_shared<std::promise<void>>();
  std::future<void> future = promise->get_future();
  internal::post_background([promise, work = std::move(work)] {
    try {
      work();
      promise->set_value();
    } catch (...) {
      promise->set_exception(std::current_exception());
    }
  });
  return future;
}

}  // namespace ckpt
