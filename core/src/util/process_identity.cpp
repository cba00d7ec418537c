#include "util/process_identity.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <fstream>
#include <sstream>

namespace ckpt::internal {

namespace {

std::string first_line_of(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

std::string this_host() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "unknown";
  return name;
}

}  // namespace

const ProcessIdentity& this_process() {
  static const ProcessIdentity me = [] {
    ProcessIdentity p;
    p.host = this_host();
    p.boot_id = first_line_of("/proc/sys/kernel/random/boot_id");
    p.pid = ::getpid();
    p.start_ticks = start_ticks_of(p.pid);
    return p;
  }();
  return me;
}

// Field 22 of /proc/<pid>/stat (the process's start time in clock ticks
// after boot); the command name before it may hold spaces and ')'.
std::optional<uint64_t> start_ticks_of(int64_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(in, text)) return std::nullopt;
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22; ++i) {  // fields 3.. follow the name
    if (!(fields >> field)) return std::nullopt;
  }
  try {
    return std::stoull(field);
  } catch (...) {
    return std::nullopt;
  }
}

bool process_runs(int64_t pid, const std::optional<uint64_t>& start_ticks) {
  if (pid <= 0 || pid > INT32_MAX) return false;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return false;
  if (!start_ticks) return true;
  // The pid may have been reused by another process since.
  const std::optional<uint64_t> now = start_ticks_of(pid);
  return !now || *now == *start_ticks;
}

}  // namespace ckpt::internal
