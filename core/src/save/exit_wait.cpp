// The wait at exit for the saves still in flight (save_job.h).
#include <ckpt/errors.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "save/save_job.h"
#include "util/logging.h"

namespace ckpt::internal {

namespace {

// How long the process waits at exit for the saves in flight: the
// CKPT_EXIT_TIMEOUT_SECONDS environment variable (seconds, from the start
// of exit) when set to a number >= 0; else until the deadline of the last
// save whose outcome is not reported yet (its Context's async_timeout from
// its start: by then it has committed or failed either way), and not at
// all for the background tiers of saves that already failed.
// REQUIRES: pending().mutex held.
Clock::time_point exit_deadline(const PendingSaves& p) {
  const Clock::time_point now = Clock::now();
  if (const char* env = std::getenv("CKPT_EXIT_TIMEOUT_SECONDS")) {
    char* end = nullptr;
    const double seconds = std::strtod(env, &end);
    if (end != env && *end == '\0' && seconds >= 0 && seconds < 1e9) {
      return now + std::chrono::duration_cast<Clock::duration>(
                       std::chrono::duration<double>(seconds));
    }
    internal::log(CKPT_LOG_WARNING, std::string("CKPT_EXIT_TIMEOUT_SECONDS=") +
                                        env +
                                        " is not a number of seconds; ignored");
  }
  Clock::time_point latest = now;
  for (const auto& job : p.jobs) {
    if (!job->reported) latest = std::max(latest, job->deadline);
  }
  return latest;
}

std::string seconds_text(Clock::duration d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d);
  return std::to_string(ms.count() / 1000) + "." +
         std::to_string(ms.count() % 1000 / 100) + " s";
}

// At exit (atexit, registered by the first save): waits for the saves in
// flight until exit_deadline, then gives up on the rest, naming for each
// the save, the checkpointables and handlers still running and the
// temporary folder it removes. The threads running them are left to the

}  // namespace

void wait_at_exit() {
  PendingSaves& p = pending();
  std::unique_lock<std::mutex> lock(p.mutex);
  if (p.jobs.empty()) return;
  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline = exit_deadline(p);
  const auto none_left = [&] { return p.jobs.empty(); };
  if (!p.cv.wait_until(lock,
                       std::min(deadline, start + std::chrono::seconds(1)),
                       none_left) &&
      Clock::now() < deadline) {
    internal::log(CKPT_LOG_WARNING,
                  "exiting: waiting up to " +
                      seconds_text(deadline - Clock::now()) + " for " +
                      std::to_string(p.jobs.size()) +
                      " save(s) in flight (the Context's async_timeout; set "
                      "CKPT_EXIT_TIMEOUT_SECONDS to change it)");
    p.cv.wait_until(lock, deadline, none_left);
  }
  // Each with whether it had already failed (reported).
  std::vector<std::pair<std::shared_ptr<SaveJob>, bool>> abandoned;
  std::vector<std::shared_ptr<SaveJob>> committing;
  for (const auto& job : p.jobs) {
    if (job->claimed) {
      committing.push_back(job);
    } else {
      job->claimed = true;
      abandoned.emplace_back(job, job->reported);
    }
  }
  lock.unlock();
  const std::string waited = seconds_text(Clock::now() - start);
  for (const auto& [job, failed] : abandoned) {
    const std::vector<size_t> running = still_running(*job);
    internal::log(
        CKPT_LOG_ERROR,
        "exiting after waiting " + waited + ": abandoned the save of " +
            job->final_path.string() +
            (failed ? " (it had already failed)" : "") + ": " +
            (running.empty() ? std::string("its commit had not run")
                             : list_running(*job, running) +
                                   (running.size() == 1 ? " was" : " were") +
                                   " still running") +
            "; nothing was committed; removing its temporary folder " +
            temporary_folder_of(*job));
    if (job->temporary) job->temporary->discard();
  }
  for (const auto& job : committing) {
    internal::log(CKPT_LOG_ERROR, "exiting after waiting " + waited +
                                      " while the save of " +
                                      job->final_path.string() +
                                      " was still committing or cleaning up");
  }
}

}  // namespace ckpt::internal
