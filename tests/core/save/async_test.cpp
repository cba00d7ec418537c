// Two-tier async saves (DESIGN.md §7): the call returns after the blocking
// tiers, the checkpoint appears only at commit, errors and timeouts surface
// from result().
#include <ckpt/checkpoint.h>
#include <ckpt/context.h>
#include <ckpt/errors.h>
#include <ckpt/stateful.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <future>
#include <thread>

#include "gated.h"
#include "test_util.h"

using namespace ckpt;
using namespace ckpt::test;

namespace {

bool only_entry_is(const fs::path& dir, const std::string& name) {
  size_t n = 0;
  bool found = false;
  for (const auto& e : fs::directory_iterator(dir)) {
    ++n;
    found |= e.path().filename() == name;
  }
  return n == 1 && found;
}

}  // namespace

TEST_CASE(
    "an async save returns before its background tier ends and the "
    "final path appears only at commit",
    "[async]") {
  TempDir dir;
  auto gated = std::make_shared<Gated>();
  gated->value = 5;
  AsyncSave pending =
      save_checkpointables_async(dir / "c", {{"x", Value::stateful(gated)}});
  CHECK_FALSE(pending.done());
  CHECK_FALSE(fs::exists(dir / "c"));
  gated->open();
  pending.result();
  CHECK(pending.done());
  CHECK(fs::exists(dir / "c" / "_CHECKPOINT_METADATA"));
  CHECK(only_entry_is(dir.path(), "c"));
}

TEST_CASE("the caller may change its data once the blocking tier returned",
          "[async]") {
  TempDir dir;
  auto gated = std::make_shared<Gated>();
  gated->value = 1;
  AsyncSave pending =
      save_checkpointables_async(dir / "c", {{"x", Value::stateful(gated)}});
  gated->value = 2;  // after the snapshot
  gated->open();
  pending.result();
  auto restored = std::make_shared<Gated>();
  load_checkpointables(dir / "c", {{"x", Value::stateful(restored)}});
  CHECK(restored->value == 1);
}

TEST_CASE(
    "a background error surfaces from result() naming the "
    "checkpointable, and nothing is committed",
    "[async]") {
  TempDir dir;
  auto gated = std::make_shared<Gated>();
  gated->fail_with = "disk full";
  gated->open();
  AsyncSave pending = save_checkpointables_async(
      dir / "c", {{"params", Value::stateful(gated)}});
  try {
    pending.result();
    FAIL("expected DataLossError");
  } catch (const DataLossError& e) {
    std::string m = e.what();
    CHECK(m.find("failed to save checkpointable 'params'") !=
          std::string::npos);
    CHECK(m.find("disk full") != std::string::npos);
  }
  CHECK(fs::is_empty(dir.path()));
}

TEST_CASE("a failing blocking tier fails the call and leaves nothing",
          "[async]") {
  TempDir dir;
  auto gated = std::make_shared<Gated>();
  gated->fail_in_blocking_tier = true;
  CHECK_THROWS_AS(
      save_checkpointables_async(dir / "c", {{"x", Value::stateful(gated)}}),
      InvalidArgumentError);
  CHECK(fs::is_empty(dir.path()));
}

TEST_CASE("the Context's async timeout fails the save and commits nothing",
          "[async]") {
  TempDir dir;
  auto gated = std::make_shared<Gated>();
  AsyncSave pending;
  {
    ContextOptions o;
    o.async_timeout = std::chrono::milliseconds(100);
    Context context(o);
    pending =
        save_checkpointables_async(dir / "c", {{"x", Value::stateful(gated)}});
  }
  CHECK_THROWS_AS(pending.result(), TimeoutError);
  CHECK_FALSE(fs::exists(dir / "c"));
  gated->open();  // let the abandoned background tier end
}

TEST_CASE("result(timeout) times out while the save goes on", "[async]") {
  TempDir dir;
  auto gated = std::make_shared<Gated>();
  AsyncSave pending =
      save_checkpointables_async(dir / "c", {{"x", Value::stateful(gated)}});
  CHECK_THROWS_AS(pending.result(std::chrono::milliseconds(20)), TimeoutError);
  gated->open();
  pending.result();
  CHECK(fs::exists(dir / "c"));
}

TEST_CASE("a second save to a path with a save in flight is refused",
          "[async]") {
  TempDir dir;
  auto gated = std::make_shared<Gated>();
  AsyncSave first =
      save_checkpointables_async(dir / "c", {{"x", Value::stateful(gated)}});
  try {
    save_checkpointables(dir / "c", {{"y", Value::json(1)}});
    FAIL("expected AlreadyExistsError");
  } catch (const AlreadyExistsError& e) {
    CHECK(std::string(e.what()).find("in flight") != std::string::npos);
  }
  gated->open();
  first.result();
  CHECK(list_checkpointables(dir / "c") == std::vector<std::string>{"x"});
}

TEST_CASE("on_complete is called once after the commit or the failure",
          "[async]") {
  TempDir dir;
  std::promise<std::exception_ptr> called;
  std::atomic<int> calls{0};
  SaveOptions options;
  options.on_complete = [&](std::exception_ptr e) {
    ++calls;
    called.set_value(e);
  };
  save_checkpointables_async(dir / "ok", {{"x", Value::json(1)}}, options);
  auto future = called.get_future();
  CHECK(future.get() == nullptr);
  wait_for_pending_saves();
  CHECK(calls == 1);
  CHECK(fs::exists(dir / "ok"));

  std::promise<std::exception_ptr> failed;
  options.on_complete = [&](std::exception_ptr e) { failed.set_value(e); };
  auto gated = std::make_shared<Gated>();
  gated->fail_with = "nope";
  gated->open();
  save_checkpointables_async(dir / "bad", {{"x", Value::stateful(gated)}},
                             options);
  CHECK(failed.get_future().get() != nullptr);
}

TEST_CASE("wait_for_pending_saves waits for every save in flight", "[async]") {
  TempDir dir;
  auto gated = std::make_shared<Gated>();
  save_checkpointables_async(dir / "c", {{"x", Value::stateful(gated)}});
  auto opener = std::async(std::launch::async, [gated] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    gated->open();
  });
  wait_for_pending_saves();
  CHECK(fs::exists(dir / "c"));
}

TEST_CASE(
    "a synchronous save has no deadline: it returns only when its "
    "background tiers are done",
    "[async]") {
  TempDir dir;
  auto gated = std::make_shared<Gated>();
  ContextOptions o;
  o.async_timeout = std::chrono::milliseconds(10);
  Context context(o);
  auto opener = std::async(std::launch::async, [gated] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    gated->open();
  });
  save_checkpointables(dir / "c", {{"x", Value::stateful(gated)}});
  CHECK(fs::exists(dir / "c" / "x" / "value.txt"));
}

TEST_CASE(
    "more async saves in flight than pool threads all commit: no pool thread "
    "waits for other pool work",
    "[async]") {
  TempDir dir;
  auto gated = std::make_shared<Gated>();
  std::vector<AsyncSave> saves;
  for (int i = 0; i < 24; ++i) {
    saves.push_back(save_checkpointables_async(
        dir / ("c" + std::to_string(i)), {{"x", Value::stateful(gated)}}));
  }
  gated->open();
  for (const AsyncSave& s : saves) {
    CHECK_NOTHROW(s.result(std::chrono::seconds(60)));
  }
  for (int i = 0; i < 24; ++i) {
    CHECK(fs::is_regular_file(dir / ("c" + std::to_string(i)) / "x" /
                              "value.txt"));
  }
}

TEST_CASE(
    "an async save commits and calls on_complete on the pool even when no "
    "handler has background work",
    "[async]") {
  TempDir dir;
  // A StatefulCheckpointable without a background tier.
  struct Instant : StatefulCheckpointable {
    BackgroundWork save(const fs::path& d) override {
      std::ofstream(d / "v.txt") << 1;
      return {};
    }
    BackgroundWork load(const fs::path&) override { return {}; }
  };
  std::promise<std::thread::id> completed_on;
  SaveOptions options;
  options.on_complete = [&](std::exception_ptr) {
    completed_on.set_value(std::this_thread::get_id());
  };
  AsyncSave s = save_checkpointables_async(
      dir / "c", {{"x", Value::stateful(std::make_shared<Instant>())}},
      options);
  s.result(std::chrono::seconds(60));
  CHECK(completed_on.get_future().get() != std::this_thread::get_id());
  CHECK(fs::is_regular_file(dir / "c" / "x" / "v.txt"));
}
