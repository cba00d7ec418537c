// Who this process is (host, boot, pid and the pid's start time), and
// whether a process recorded so still runs: what tells a save folder whose
// writer died from one still being written.
#ifndef CKPT_SRC_UTIL_PROCESS_IDENTITY_H_
#define CKPT_SRC_UTIL_PROCESS_IDENTITY_H_

#include <cstdint>
#include <optional>
#include <string>

namespace ckpt::internal {

struct ProcessIdentity {
  std::string host;
  std::string boot_id;
  int64_t pid = 0;
  // The pid's start time in clock ticks after boot (/proc/<pid>/stat);
  // absent when it could not be read.
  std::optional<uint64_t> start_ticks;
};

// This process (read once).
const ProcessIdentity& this_process();

// The start time of `pid` in clock ticks after boot; nullopt when it
// cannot be read (no such process).
std::optional<uint64_t> start_ticks_of(int64_t pid);

// Whether process `pid` of this host and boot still runs: it exists, is
// not a zombie (exited, not reaped yet) and, when `start_ticks` is known,
// started then (a pid may be reused).
bool process_runs(int64_t pid, const std::optional<uint64_t>& start_ticks);

}  // namespace ckpt::internal

#endif  // CKPT_SRC_UTIL_PROCESS_IDENTITY_H_
