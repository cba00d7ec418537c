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

namespace {

// What ckpt reads of /proc/<pid>/stat: field 3 (the state: 'Z' for a
// zombie, 'X' for a dead process) and field 22 (the start time in clock
// ticks after boot). The command name before them may hold spaces and ')'.
struct ProcStat {
  char state = '?';
  uint64_t start_ticks = 0;
};

std::optional<ProcStat> stat_of(int64_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(in, text)) return std::nullopt;
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(close + 1));
  ProcStat stat;
  std::string field;
  for (int i = 3; i <= 22; ++i) {  // fields 3.. follow the name
    if (!(fields >> field)) return std::nullopt;
    if (i == 3) stat.state = field[0];
  }
  try {
    stat.start_ticks = std::stoull(field);
  } catch (...) {
    return std::nullopt;
  }
  return stat;
}

}  // namespace

std::optional<uint64_t> start_ticks_of(int64_t pid) {
  const std::optional<ProcStat> stat = stat_of(pid);
  if (!stat) return std::nullopt;
  return stat->start_ticks;
}

bool process_runs(int64_t pid, const std::optional<uint64_t>& start_ticks) {
  if (pid <= 0 || pid > INT32_MAX) return false;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return false;
  const std::optional<ProcStat> stat = stat_of(pid);
  // A zombie has exited: only its parent has not reaped it yet.
  if (stat && (stat->state == 'Z' || stat->state == 'X')) return false;
  if (!start_ticks) return true;
  // The pid may have been reused by another process since.
  return !stat || stat->start_ticks == *start_ticks;
}

}  // namespace ckpt::internal
