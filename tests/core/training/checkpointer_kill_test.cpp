// A training loop (tests/training_child.cpp) killed at random moments and
// preempted with a real SIGTERM: resuming always finds the latest committed
// step complete, and no temporary folder outlives the next open.
#include <ckpt/checkpointer.h>
#include <ckpt/errors.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "test_util.h"

using namespace ckpt;
using namespace ckpt::test;
using Clock = std::chrono::steady_clock;

namespace {

pid_t spawn_training(const fs::path& root, const char* mode,
                     const fs::path& log) {
  // Everything the child needs is made before fork: after it, the child
  // may not allocate (another thread may have held the allocator's lock).
  const std::string exe =
      std::string(CKPT_BUILD_ROOT) + "/tests/training_child";
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execl(exe.c_str(), exe.c_str(), root.c_str(), mode, nullptr);
    ::_exit(127);
  }
  return pid;
}

// The number of "step N" lines the child printed so far.
int steps_printed(const fs::path& log) {
  std::ifstream in(log);
  std::string word;
  long long step = 0;
  int lines = 0;
  while (in >> word >> step) lines += word == "step";
  return lines;
}

// Waits until the child printed `lines` steps (or ended, or 60 s passed).
void wait_for_steps(pid_t child, const fs::path& log, int lines) {
  const auto give_up = Clock::now() + std::chrono::seconds(60);
  while (steps_printed(log) < lines && Clock::now() < give_up) {
    int status = 0;
    if (::waitpid(child, &status, WNOHANG) == child) {
      FAIL("the training child ended early: " << read_text(log));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

int exit_status_of(pid_t child) {
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

// Loads `step` of `root` and checks that every value is the step's.
void check_step_loads_completely(Checkpointer& checkpointer, int64_t step) {
  Value tree = checkpointer.load_pytree(step);
  CHECK(tree.at("step").as_int() == step);
  for (const auto& [name, sign] : {std::pair{"a", 1.0f}, {"b", -1.0f}}) {
    const std::vector<float> values =
        tree.at(name).as_array().to_vector<float>();
    REQUIRE(values.size() == 64 * 1024);
    const float expected = sign * static_cast<float>(step);
    CHECK(std::all_of(values.begin(), values.end(),
                      [&](float v) { return v == expected; }));
  }
}

CheckpointerOptions kill_child_options() {
  CheckpointerOptions options;
  options.save_decision_policy = ContinuousCheckpointingPolicy();
  options.preservation_policy =
      AnyPreservationPolicy({LatestN(2), BestN("loss", /*reverse=*/true, 1)});
  return options;
}

}  // namespace

TEST_CASE(
    "a training loop SIGKILLed 100 times always resumes from its latest "
    "committed step, complete, and leaves no temporary folder after the "
    "next open",
    "[checkpointer][slow]") {
  TempDir dir;
  const fs::path root = dir / "run";
  const fs::path log = dir / "log";
  std::mt19937 random(20261129);
  int64_t committed_before = -1;  // the newest step seen committed so far
  int kills = 0, resumed = 0, leftovers_removed = 0, steps_seen = 0;
  for (int round = 0; round < 100; ++round) {
    pid_t child = spawn_training(root, "kill", log);
    // Kill after 0-40 steps: before, during and after its saves.
    const int lines = static_cast<int>(random() % 41);
    if (lines > 0) wait_for_steps(child, log, lines);
    std::this_thread::sleep_for(std::chrono::microseconds(random() % 3000));
    ::kill(child, SIGKILL);
    const int status = exit_status_of(child);
    INFO("round " << round << ", child log:\n" << read_text(log));
    REQUIRE(status == -SIGKILL);  // exit 3 would mean it found a bad step
    ++kills;
    steps_seen += steps_printed(log);

    const size_t temporaries_before =
        list_checkpoint_root(root).temporaries.size();
    Checkpointer checkpointer(root, kill_child_options());
    const RootListing after = list_checkpoint_root(root);
    CHECK(after.temporaries.empty());
    CHECK(checkpointer.leftover_temporaries().empty());
    leftovers_removed += static_cast<int>(temporaries_before);
    for (const StepFolder& step : after.steps) {
      CHECK(step.committed);
    }
    const std::optional<CheckpointStep> latest = checkpointer.latest();
    if (committed_before >= 0) {
      // Never zero checkpoints once one was committed, never older.
      REQUIRE(latest);
      CHECK(latest->step >= committed_before);
    }
    if (latest) {
      check_step_loads_completely(checkpointer, latest->step);
      committed_before = latest->step;
      ++resumed;
    }
  }
  std::printf(
      "checkpointer kills: %d kills, %d steps trained, %d resumes from a "
      "committed step, %d leftover temporary folders removed, newest step "
      "%lld\n",
      kills, steps_seen, resumed, leftovers_removed,
      static_cast<long long>(committed_before));
  CHECK(resumed > 50);

  // `ckpt ls` on that root: every step committed, nothing temporary.
  const CommandResult ls =
      run_command(std::string(CKPT_TOOL) + " ls --json " + root.string());
  REQUIRE(ls.status == 0);
  const nlohmann::json listing = nlohmann::json::parse(ls.output);
  REQUIRE(!listing.at("steps").empty());
  for (const auto& step : listing.at("steps")) {
    CHECK(step.at("state") == "committed");
    CHECK(step.at("metrics").contains("loss"));
  }
  CHECK(listing.at("steps").back().at("step") == committed_before);
  CHECK(listing.at("temporaries").empty());
}

TEST_CASE(
    "SIGTERM makes a training loop save the step it is at, wait for the "
    "commit and exit 0",
    "[checkpointer][slow]") {
  TempDir dir;
  const fs::path root = dir / "run";
  const fs::path log = dir / "log";
  pid_t child = spawn_training(root, "preempt", log);
  wait_for_steps(child, log, 20);
  // The policy never saves: nothing is on disk before the signal.
  CHECK(list_checkpoint_root(root).steps.empty());
  ::kill(child, SIGTERM);
  const int status = exit_status_of(child);
  const std::string out = read_text(log);
  INFO(out);
  REQUIRE(status == 0);
  const size_t at = out.find("preempted ");
  REQUIRE(at != std::string::npos);
  const int64_t preempted_step = std::stoll(out.substr(at + 10));
  CHECK(preempted_step >= 20);

  Checkpointer checkpointer(root);
  REQUIRE(checkpointer.latest());
  CHECK(checkpointer.latest()->step == preempted_step);
  CHECK(checkpointer.checkpoints().size() == 1);
  check_step_loads_completely(checkpointer, preempted_step);

  // Restarted, it resumes from there; a second SIGTERM while the first is
  // being handled would end it at once (not tested: a race by design).
  const fs::path second_log = dir / "second_log";
  child = spawn_training(root, "preempt", second_log);
  wait_for_steps(child, second_log, 5);
  ::kill(child, SIGTERM);
  REQUIRE(exit_status_of(child) == 0);
  const std::string second = read_text(second_log);
  INFO(second);
  CHECK(second.rfind("resumed " + std::to_string(preempted_step) + "\n", 0) ==
        0);
  const int64_t second_step =
      std::stoll(second.substr(second.find("preempted ") + 10));
  CHECK(second_step > preempted_step);
  checkpointer.reload();
  CHECK(checkpointer.latest()->step == second_step);
}
