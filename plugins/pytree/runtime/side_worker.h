// A second thread for CPU work that can overlap I/O: checksums computed
// while arrays are written, verified while later arrays are still read.
#ifndef CKPT_PLUGINS_PYTREE_RUNTIME_SIDE_WORKER_H_
#define CKPT_PLUGINS_PYTREE_RUNTIME_SIDE_WORKER_H_

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace ckpt::pytree {

// Runs submitted tasks in order on its own thread. finish() waits for all
// of them and rethrows the first exception one threw (later tasks still
// run). The destructor waits too, dropping any exception.
class SideWorker {
 public:
  SideWorker();
  ~SideWorker();
  SideWorker(const SideWorker&) = delete;
  SideWorker& operator=(const SideWorker&) = delete;

  void submit(std::function<void()> task);
  void finish();

 private:
  void run();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;
  bool closing_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace ckpt::pytree

#endif  // CKPT_PLUGINS_PYTREE_RUNTIME_SIDE_WORKER_H_
