// No hang: a plugin whose background tier never ends blocks neither a
// synchronous save past its deadline (when nothing of the caller's is lent
// to it) nor the process's exit (checkpoint.h, "Deadlines").
// tests/test_plugins/hang_handler.cpp is the plugin; it ends when its release
// file appears, which every test here makes sure of before it returns.
#include <ckpt/checkpoint.h>
#include <ckpt/context.h>
#include <ckpt/errors.h>
#include <ckpt/plugins.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <functional>
#include <future>
#include <string>
#include <thread>

#include "test_util.h"

using namespace ckpt;
using namespace ckpt::test;

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

const char kHandler[] = "test.HangHandler";

// Generous bound for anything that must not hang: a hang fails the test
// instead of blocking the suite.
constexpr seconds kHangLimit(60);

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

fs::path hang_plugin() { return test_plugin("hang_handler.so"); }

// The release file of the plugin: created (and the plugin thereby let go)
// at the latest when this goes out of scope.
class Release {
 public:
  explicit Release(fs::path file) : file_(std::move(file)) {}
  ~Release() { now(); }
  void now() {
    if (!fs::exists(file_)) std::ofstream(file_) << "go";
  }
  const fs::path& file() const { return file_; }

 private:
  fs::path file_;
};

// A Context whose checkpointable "item" goes to test.HangHandler, which
// waits for `release`, with the deadline `timeout`.
ContextOptions hang_options(const Release& release, milliseconds timeout) {
  load_plugin(hang_plugin());
  ContextOptions o;
  o.async_timeout = timeout;
  o.checkpointables_options = CheckpointablesOptions::create_with_handlers(
      {{"item",
        make_handler(kHandler, {{"release_file", release.file().string()}})}});
  return o;
}

Value owned_tree() {
  return Value::dict({{"w", Array::from(std::vector<float>(1000, 1.0f))},
                      {"b", Array::zeros(DType::kUInt8, {4})}});
}

// Runs `call` on a thread of its own (in a Context of `options`: Contexts
// belong to a thread); returns its exception (null when it returned). When it
// has not returned within kHangLimit, releases the plugin so that the thread
// can end, and fails the test.
std::exception_ptr within_limit(const ContextOptions& options,
                                const std::function<void()>& call,
                                Release& release) {
  std::promise<std::exception_ptr> outcome;
  std::future<std::exception_ptr> future = outcome.get_future();
  std::thread thread([&] {
    try {
      Context context(options);
      call();
      outcome.set_value(nullptr);
    } catch (...) {
      outcome.set_value(std::current_exception());
    }
  });
  const bool returned =
      future.wait_for(kHangLimit) == std::future_status::ready;
  if (!returned) release.now();
  thread.join();
  if (!returned) FAIL("the call was still blocked after 60 s");
  return future.get();
}

std::string message_of_exception(std::exception_ptr e) {
  try {
    if (e) std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  }
  return "";
}

// Waits (up to kHangLimit) until `dir` holds exactly `expected`.
bool eventually_entries(const fs::path& dir,
                        const std::vector<std::string>& expected) {
  const auto end = Clock::now() + kHangLimit;
  while (folder_entries(dir) != expected) {
    if (Clock::now() > end) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return true;
}

bool is_temporary_of(const std::string& name, const std::string& final_name) {
  return name.rfind(final_name + ".orbax-checkpoint-tmp-", 0) == 0;
}

// Runs tests/os_error_child with `args` under `env`, killed after
// kHangLimit (then the status is not 0): its status and stdout + stderr.
CommandResult run_child(const std::string& env, const std::string& args) {
  const std::string exe =
      std::string(CKPT_BUILD_ROOT) + "/tests/os_error_child";
  return run_command("env " + env + " timeout -s KILL " +
                     std::to_string(kHangLimit.count()) + " " + exe + " " +
                     args + " 2>&1");
}

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

}  // namespace

TEST_CASE(
    "a synchronous save of owned arrays fails at the deadline when its "
    "plugin never ends, naming the handler, and commits nothing",
    "[hang]") {
  TempDir dir;
  Release release(dir / "release");
  const milliseconds timeout(300);
  const ContextOptions options = hang_options(release, timeout);
  const auto start = Clock::now();
  std::exception_ptr error = within_limit(
      options,
      [&] {
        save_checkpointables(dir / "c", {{"item", owned_tree()}});
      },
      release);
  const auto took = Clock::now() - start;
  REQUIRE(error);
  const std::string m = message_of_exception(error);
  INFO(m);
  CHECK_THROWS_AS(std::rethrow_exception(error), TimeoutError);
  CHECK(contains(m, kHandler));
  CHECK(contains(m, hang_plugin().string()));
  CHECK(contains(m, "'item'"));
  CHECK(contains(m, (dir / "c").string()));
  CHECK(took < timeout + seconds(30));
  // Nothing at the final path; the temporary folder waits for the plugin.
  CHECK_FALSE(fs::exists(dir / "c"));
  std::vector<std::string> left = folder_entries(dir.path());
  REQUIRE(left.size() == 1);
  CHECK(is_temporary_of(left[0], "c"));

  // The caller goes on: the path is free for another save.
  save_checkpointables(dir / "c", {{"other", Value::json({{"a", 1}})}});
  CHECK(list_checkpointables(dir / "c") == std::vector<std::string>{"other"});

  // Once the plugin ends, its temporary folder goes, and the late save
  // changes nothing.
  release.now();
  CHECK(eventually_entries(dir.path(), {"c", "release"}));
  CHECK(list_checkpointables(dir / "c") == std::vector<std::string>{"other"});
}

TEST_CASE(
    "an async save whose plugin never ends times out naming the handler; "
    "its temporary folder goes when the plugin ends",
    "[hang]") {
  TempDir dir;
  Release release(dir / "release");
  AsyncSave pending;
  {
    Context context(hang_options(release, milliseconds(200)));
    pending = save_checkpointables_async(dir / "c", {{"item", owned_tree()}});
  }
  std::exception_ptr error = within_limit(
      {}, [&] { pending.result(); }, release);
  REQUIRE(error);
  const std::string m = message_of_exception(error);
  INFO(m);
  CHECK_THROWS_AS(std::rethrow_exception(error), TimeoutError);
  CHECK(contains(m, kHandler));
  CHECK(contains(m, "'item'"));
  CHECK_FALSE(fs::exists(dir / "c"));
  release.now();
  CHECK(eventually_entries(dir.path(), {"release"}));
}

TEST_CASE(
    "a synchronous save of a borrowed array waits past the deadline, "
    "warning, until the plugin ends",
    "[hang]") {
  TempDir dir;
  // In a child: the warning goes to its stderr whatever this process's
  // CKPT_LOG_LEVEL; it releases the plugin 3 x 500 ms after its start.
  CommandResult r = run_child("CKPT_LOG_LEVEL=warning",
                              "hang-borrowed " + quoted(dir.path()) + " " +
                                  quoted(hang_plugin()) + " 500");
  INFO(r.output);
  REQUIRE(r.status == 0);
  // The warning names the handler, the checkpointable and why it waits.
  CHECK(contains(r.output, "ckpt warning: saving " + (dir / "c").string()));
  CHECK(contains(r.output, kHandler));
  CHECK(contains(r.output, "'item'"));
  CHECK(contains(r.output, "borrowed array"));
  // The save returned only once the plugin was released, and saved the
  // bytes of the caller's memory as they were (1 + 2 + ... + 16).
  CHECK(contains(r.output, "returned released=1 sum=136"));
  CHECK_FALSE(contains(r.output, "unexpected"));
}

TEST_CASE(
    "a process exits within CKPT_EXIT_TIMEOUT_SECONDS with a save in "
    "flight whose plugin never ends, naming what it abandons",
    "[hang]") {
  TempDir dir;
  const auto start = Clock::now();
  // The save's own deadline is the default (20 minutes): the variable
  // alone bounds the wait.
  CommandResult r = run_child(
      "CKPT_LOG_LEVEL=warning CKPT_EXIT_TIMEOUT_SECONDS=1",
      "hang-exit " + quoted(dir.path()) + " " + quoted(hang_plugin()));
  const auto took = Clock::now() - start;
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(took < seconds(30));
  CHECK(contains(r.output, "started"));
  CHECK(contains(r.output, "abandoned the save of " + (dir / "c").string()));
  CHECK(contains(r.output, kHandler));
  CHECK(contains(r.output, "'item'"));
  CHECK(contains(r.output, (dir / "c").string() + ".orbax-checkpoint-tmp-"));
  // Nothing committed, and the temporary folder was removed at exit.
  CHECK(fs::is_empty(dir.path()));
}

TEST_CASE(
    "without CKPT_EXIT_TIMEOUT_SECONDS a process exits at the deadline of "
    "the save in flight",
    "[hang]") {
  TempDir dir;
  CommandResult r = run_child(
      "-u CKPT_EXIT_TIMEOUT_SECONDS CKPT_LOG_LEVEL=error",
      "hang-exit " + quoted(dir.path()) + " " + quoted(hang_plugin()) + " 500");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(contains(r.output, "started"));
  CHECK(contains(r.output, "ckpt error: exiting after waiting"));
  CHECK(contains(r.output, "abandoned the save of " + (dir / "c").string()));
  CHECK(contains(r.output, kHandler));
  CHECK(fs::is_empty(dir.path()));
}
