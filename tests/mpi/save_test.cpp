// Multi-process saves (ckpt/multiprocess.h) under mpirun: every process
// calls save with the same path; the primary host commits once every
// process succeeded, and every process learns the same outcome.
#include <ckpt/checkpoint.h>
#include <ckpt/context.h>
#include <ckpt/errors.h>
#include <ckpt/layout.h>
#include <ckpt/mpi.h>
#include <ckpt/stateful.h>
#include <ckpt/value.h>
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "mpi_util.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace mpi_test;

namespace {

ckpt::Value params() {
  return ckpt::Value::dict({
      {"w", ckpt::Array::from<float>({1, 2, 3, 4, 5, 6}, {2, 3})},
      {"b", ckpt::Array::from<double>({0.5, -0.5})},
      {"step", 7},
  });
}

// Writes "part.<process>" into its folder in the background; throws there
// on process `fail_on` (-1: none).
class PerProcessState final : public ckpt::StatefulCheckpointable {
 public:
  explicit PerProcessState(int fail_on) : fail_on_(fail_on) {}
  ckpt::BackgroundWork save(const fs::path& dir) override {
    const int p = me();
    const int fail_on = fail_on_;
    return [dir, p, fail_on] {
      if (p == fail_on) {
        throw std::runtime_error("the disk of process " + std::to_string(p) +
                                 " is on fire");
      }
      std::ofstream(dir / ("part." + std::to_string(p))) << "state of " << p;
    };
  }
  ckpt::BackgroundWork load(const fs::path& dir) override {
    loaded = std::ifstream(dir / ("part." + std::to_string(me()))).good();
    return nullptr;
  }
  bool loaded = false;

 private:
  int fail_on_;
};

}  // namespace

TEST_CASE("a multi-process save commits once, and every process loads it",
          "[mpi][save]") {
  SharedFolder dir("roundtrip");
  const fs::path path = dir.path() / "ckpt";
  auto state = std::make_shared<PerProcessState>(-1);
  {
    ckpt::Context context(mp_options());
    ckpt::save_checkpointables(path,
                               {{"params", params()},
                                {"config", ckpt::Value::json({{"lr", 0.1}})},
                                {"state", ckpt::Value::stateful(state)}});
  }
  world()->barrier();
  CHECK(ckpt::test::folder_entries(dir.path()) ==
        std::vector<std::string>{"ckpt"});
  // Every process's own part is in the one checkpoint.
  for (int p = 0; p < count(); ++p) {
    CHECK(fs::exists(path / "state" / ("part." + std::to_string(p))));
  }
  const ckpt::Value loaded = ckpt::load(path, nullptr, "params");
  CHECK(loaded == params());
  ckpt::Checkpointables parts =
      ckpt::load_checkpointables(path, {{"config", ckpt::Value()}});
  CHECK(parts.at(0).second.as_json() == nlohmann::json({{"lr", 0.1}}));
  auto restored = std::make_shared<PerProcessState>(-1);
  ckpt::load_checkpointables(path,
                             {{"state", ckpt::Value::stateful(restored)}});
  CHECK(restored->loaded);
  CHECK(ckpt::check_checkpointable_bytes(path, "state"));
}

TEST_CASE("a failure on one process: no checkpoint, the same error everywhere",
          "[mpi][save]") {
  SharedFolder dir("failure");
  const fs::path path = dir.path() / "ckpt";
  const int failing = count() - 1;
  auto state = std::make_shared<PerProcessState>(failing);
  ckpt::Context context(mp_options());
  try {
    ckpt::save_checkpointables(
        path, {{"params", params()}, {"state", ckpt::Value::stateful(state)}});
    FAIL("the save succeeded");
  } catch (const ckpt::Error& e) {
    const std::string message = e.what();
    CHECK_THAT(message, Catch::Contains("on fire"));
    CHECK_THAT(message, Catch::Contains("checkpointable 'state'"));
    if (me() != failing) {
      CHECK_THAT(message, Catch::Contains("failed on process " +
                                          std::to_string(failing) + " of " +
                                          std::to_string(count())));
    }
  }
  world()->barrier();
  CHECK(ckpt::test::folder_entries(dir.path()).empty());
}

TEST_CASE("a failure while overwriting keeps the old checkpoint",
          "[mpi][save]") {
  SharedFolder dir("overwrite");
  const fs::path path = dir.path() / "ckpt";
  ckpt::Context context(mp_options());
  ckpt::save(path, params());
  ckpt::SaveOptions overwrite;
  overwrite.overwrite = true;
  auto state = std::make_shared<PerProcessState>(0);
  CHECK_THROWS_AS(
      ckpt::save_checkpointables(path,
                                 {{"pytree", ckpt::Value::dict({{"x", 1}})},
                                  {"state", ckpt::Value::stateful(state)}},
                                 overwrite),
      ckpt::Error);
  world()->barrier();
  CHECK(ckpt::test::folder_entries(dir.path()) ==
        std::vector<std::string>{"ckpt"});
  CHECK(ckpt::load(path) == params());
}

TEST_CASE("a local error before the save starts reaches every process",
          "[mpi][save]") {
  SharedFolder dir("local");
  const fs::path path = dir.path() / "ckpt";
  ckpt::Context context(mp_options());
  const int failing = count() - 1;
  // A name ckpt refuses, on one process only.
  const std::string name = me() == failing ? "bad/name" : "params";
  try {
    ckpt::save_checkpointables(path, {{name, params()}});
    FAIL("the save succeeded");
  } catch (const ckpt::InvalidArgumentError& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains("bad/name"));
  }
  world()->barrier();
  CHECK(ckpt::test::folder_entries(dir.path()).empty());
}

TEST_CASE("the primary's error (the path exists) keeps its kind everywhere",
          "[mpi][save]") {
  SharedFolder dir("exists");
  const fs::path path = dir.path() / "ckpt";
  ckpt::Context context(mp_options(count() - 1));
  ckpt::save(path, params());
  try {
    ckpt::save(path, params());
    FAIL("the second save succeeded");
  } catch (const ckpt::AlreadyExistsError& e) {
    if (!ckpt::Context::current().is_primary_host()) {
      CHECK_THAT(std::string(e.what()), Catch::Contains("the primary host"));
    }
  }
  CHECK(ckpt::load(path) == params());
}

TEST_CASE("processes saving to different paths is an error on every process",
          "[mpi][save]") {
  if (count() == 1) return;  // nothing differs
  SharedFolder dir("paths");
  ckpt::Context context(mp_options());
  const fs::path path =
      dir.path() / (me() == count() - 1 ? "elsewhere" : "ckpt");
  CHECK_THROWS_WITH(ckpt::save(path, params()),
                    Catch::Contains("every process must save to the same "
                                    "path"));
  world()->barrier();
  CHECK(ckpt::test::folder_entries(dir.path()).empty());
}

TEST_CASE("async multi-process saves commit one after the other",
          "[mpi][save][async]") {
  SharedFolder dir("async");
  ckpt::Context context(mp_options());
  std::vector<ckpt::AsyncSave> saves;
  for (int i = 0; i < 3; ++i) {
    saves.push_back(ckpt::save_async(
        dir.path() / ("step_" + std::to_string(i)),
        ckpt::Value::dict(
            {{"i", i}, {"w", ckpt::Array::from<int32_t>({i, i + 1})}})));
  }
  for (auto& s : saves) s.result();
  world()->barrier();
  for (int i = 0; i < 3; ++i) {
    const ckpt::Value v =
        ckpt::load(dir.path() / ("step_" + std::to_string(i)));
    CHECK(v.at("i") == ckpt::Value(i));
  }
}

TEST_CASE("processes saving different checkpointables is an error everywhere",
          "[mpi][save]") {
  if (count() == 1) return;  // nothing differs
  SharedFolder dir("names");
  ckpt::Context context(mp_options());
  ckpt::Checkpointables items = {{"params", params()}};
  if (me() == count() - 1) items.push_back({"extra", ckpt::Value::json(1)});
  CHECK_THROWS_WITH(
      ckpt::save_checkpointables(dir.path() / "ckpt", items),
      Catch::Contains("every process must save the same checkpointables"));
  world()->barrier();
  CHECK(ckpt::test::folder_entries(dir.path()).empty());
}
