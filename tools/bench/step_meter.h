// What one timed step of the benchmark costs, beside its wall time: the
// process's CPU time (user + system, every thread), its page faults (minor
// and major), the bytes it read and wrote (/proc/self/io: read_bytes and
// write_bytes, what reached the block layer; rchar and wchar, what passed
// through read() and write()), and the growth of its peak resident set.
// bench.py's peers measure the same fields the same way (StepMeter there).
//
// Cycles and instructions come from `perf stat` around the step's process
// (bench.py starts it so where the machine offers hardware counters): the
// step enables the counters through CKPT_BENCH_PERF_CTL (a FIFO perf reads
// commands from) for exactly the timed part and waits for perf's
// acknowledgement on CKPT_BENCH_PERF_ACK.
#ifndef CKPT_TOOLS_BENCH_STEP_METER_H_
#define CKPT_TOOLS_BENCH_STEP_METER_H_

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace ckpt_bench {

// VmHWM (peak resident set) of this process, in bytes.
inline uint64_t peak_rss() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

// Resets VmHWM to the current RSS (Linux >= 4.0).
inline void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

// The counters of /proc/self/io (absent fields stay 0).
inline std::map<std::string, uint64_t> io_counters() {
  std::map<std::string, uint64_t> out;
  std::ifstream io("/proc/self/io");
  std::string key;
  uint64_t value;
  while (io >> key >> value) {
    if (!key.empty() && key.back() == ':') key.pop_back();
    out[key] = value;
  }
  return out;
}

// Sends `command` ("enable" or "disable") to the perf stat controlling this
// process, if any, and waits for its "ack".
inline void perf_control(const char* command) {
  const char* ctl = std::getenv("CKPT_BENCH_PERF_CTL");
  const char* ack = std::getenv("CKPT_BENCH_PERF_ACK");
  if (!ctl || !ack) return;
  const int c = ::open(ctl, O_WRONLY | O_CLOEXEC);
  const int a = ::open(ack, O_RDONLY | O_CLOEXEC);
  if (c >= 0 && a >= 0) {
    const std::string line = std::string(command) + "\n";
    if (::write(c, line.data(), line.size()) ==
        static_cast<ssize_t>(line.size())) {
      char reply[16];
      (void)!::read(a, reply, sizeof reply);
    }
  }
  if (c >= 0) ::close(c);
  if (a >= 0) ::close(a);
}

// Touches `bytes` of fresh anonymous memory, asked for in huge pages, then
// gives it back. Untimed; the same for every tool (bench.py passes the size
// in CKPT_BENCH_PRIMER_BYTES). The pages a step is about to fault in have
// been backed by the host once, and the kernel has whole free 2 MiB blocks
// ready: without this, a step that asks for huge pages (ckpt's buffers, the
// raw limit's "huge" variant) pays the kernel's compaction of memory, or
// not, depending on which step ran before it (0.1 s or 2.9 s for the same
// 1 GiB read here).
inline void prime_memory() {
  const char* text = std::getenv("CKPT_BENCH_PRIMER_BYTES");
  const uint64_t bytes = text ? std::strtoull(text, nullptr, 10) : 0;
  if (bytes == 0) return;
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return;
  ::madvise(p, bytes, MADV_HUGEPAGE);  // a hint only
  const long page = ::sysconf(_SC_PAGESIZE);
  for (uint64_t at = 0; at < bytes; at += static_cast<uint64_t>(page)) {
    static_cast<volatile char*>(p)[at] = 1;
  }
  ::munmap(p, bytes);
}

class StepMeter {
 public:
  using Clock = std::chrono::steady_clock;

  // The primer, then the counters' first reading; the clock starts last.
  void start() {
    prime_memory();
    reset_peak_rss();
    rss_before_ = peak_rss();
    io_before_ = io_counters();
    ::getrusage(RUSAGE_SELF, &usage_before_);
    perf_control("enable");
    start_ = Clock::now();
  }

  // Stops the clock and the counters; adds what they saw to `out`.
  double stop(nlohmann::json& out) {
    const double seconds =
        std::chrono::duration<double>(Clock::now() - start_).count();
    perf_control("disable");
    rusage usage;
    ::getrusage(RUSAGE_SELF, &usage);
    const auto io = io_counters();
    auto tv = [](const timeval& t) { return t.tv_sec + t.tv_usec * 1e-6; };
    out["seconds"] = seconds;
    out["cpu_user_seconds"] = tv(usage.ru_utime) - tv(usage_before_.ru_utime);
    out["cpu_system_seconds"] = tv(usage.ru_stime) - tv(usage_before_.ru_stime);
    out["minor_faults"] = usage.ru_minflt - usage_before_.ru_minflt;
    out["major_faults"] = usage.ru_majflt - usage_before_.ru_majflt;
    for (const char* key : {"read_bytes", "write_bytes", "rchar", "wchar"}) {
      auto after = io.find(key);
      auto before = io_before_.find(key);
      out[key] = after != io.end() && before != io_before_.end()
                     ? after->second - before->second
                     : 0;
    }
    out["rss_extra_bytes"] = peak_rss() - rss_before_;
    return seconds;
  }

 private:
  Clock::time_point start_;
  rusage usage_before_{};
  std::map<std::string, uint64_t> io_before_;
  uint64_t rss_before_ = 0;
};

}  // namespace ckpt_bench

#endif  // CKPT_TOOLS_BENCH_STEP_METER_H_
