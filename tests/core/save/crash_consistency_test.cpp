// Crash consistency: a child process saving and overwriting checkpoints is
// killed with SIGKILL at random moments. After each kill the final paths
// are absent or complete checkpoints that load, and no committed checkpoint
// is lost.
#include <ckpt/checkpoint.h>
#include <ckpt/errors.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#include "test_util.h"

using namespace ckpt;
using namespace ckpt::test;

namespace {

// The step a checkpoint holds, after checking its payload matches it.
// Throws if it does not load or is inconsistent.
long long verified_step(const fs::path& checkpoint) {
  Value v = load_checkpointables(checkpoint, {{"data", Value()}})[0].second;
  const auto& doc = v.as_json();
  long long step = doc.at("step").get<long long>();
  const std::string& payload = doc.at("payload").get_ref<const std::string&>();
  if (payload != std::string(256 * 1024, static_cast<char>('a' + step % 26))) {
    throw DataLossError("payload of " + checkpoint.string() +
                        " is inconsistent");
  }
  return step;
}

pid_t spawn_child(const fs::path& dir, long long first_step,
                  const fs::path& log) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    std::string exe = std::string(CKPT_BUILD_ROOT) + "/tests/crash_child";
    std::string step = std::to_string(first_step);
    ::execl(exe.c_str(), exe.c_str(), dir.c_str(), step.c_str(), nullptr);
    ::_exit(127);
  }
  return pid;
}

// How long a child takes from its start to its first commit on this
// machine now (sanitizer builds and a loaded machine are several times
// slower): the kill delays scale with it.
std::chrono::milliseconds time_to_first_commit(const fs::path& dir) {
  const fs::path log = dir / "log_calibration";
  const auto start = std::chrono::steady_clock::now();
  pid_t child = spawn_child(dir, 900000000LL, log);
  auto elapsed = std::chrono::milliseconds(0);
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    std::ifstream in(log);
    std::string what;
    if ((in >> what && what == "overwrote") ||
        elapsed > std::chrono::seconds(20)) {
      break;
    }
  }
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  return elapsed;
}

}  // namespace

TEST_CASE(
    "checkpoints survive SIGKILL at random moments: the final path is "
    "absent or complete, the previous checkpoint intact",
    "[crash]") {
  TempDir dir;
  std::mt19937 random(20261128);
  // Some kills land during start-up and the first save, most later.
  const int first_commit_ms =
      static_cast<int>(time_to_first_commit(dir.path()).count());
  std::uniform_int_distribution<int> delay_ms(first_commit_ms / 2,
                                              3 * first_commit_ms + 5);
  const int kills = 60;
  int lost = 0, overwritten_checked = 0, created_checked = 0;
  long long last_overwrite = -1;
  for (int k = 0; k < kills; ++k) {
    const fs::path log = dir / ("log_" + std::to_string(k));
    pid_t child = spawn_child(dir.path(), k * 100000LL, log);
    REQUIRE(child > 0);
    std::this_thread::sleep_for(
        std::chrono::milliseconds(delay_ms(random) + (k % 3) * 40));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);

    std::ifstream in(log);
    std::string what;
    long long step;
    std::vector<long long> created;
    while (in >> what >> step) {
      if (what == "overwrote") last_overwrite = step;
      if (what == "created") created.push_back(step);
    }
    // The overwritten checkpoint: once committed, always there and whole,
    // holding the last step reported or one just after it.
    if (last_overwrite >= 0) {
      try {
        long long s = verified_step(dir / "ckpt");
        if (s < last_overwrite) ++lost;
        ++overwritten_checked;
      } catch (const Error& e) {
        INFO(e.what());
        ++lost;
      }
    }
    // Every reported new checkpoint is there and whole.
    for (long long s : created) {
      try {
        if (verified_step(dir / ("step_" + std::to_string(s))) != s) ++lost;
        ++created_checked;
      } catch (const Error&) {
        ++lost;
      }
    }
  }
  // Every final path of a step folder is absent or complete.
  int complete = 0;
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("step_", 0) != 0 ||
        name.find(".orbax-checkpoint-tmp") != std::string::npos) {
      continue;
    }
    CHECK_NOTHROW(verified_step(entry.path()));
    ++complete;
  }
  std::cout << "crash consistency: " << kills << " kills, "
            << overwritten_checked << " overwrite checks, "
            << created_checked + complete << " new-checkpoint checks, " << lost
            << " checkpoints lost\n";
  CHECK(overwritten_checked > kills / 2);
  CHECK(lost == 0);
  // And a save still works next to the leftovers.
  save_checkpointables(dir / "after", {{"data", Value::json(1)}});
  CHECK(load_checkpointables(dir / "after")[0].second.as_json() == 1);
}
