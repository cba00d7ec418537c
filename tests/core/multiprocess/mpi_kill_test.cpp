// A multi-process save whose one process is killed (SIGKILL) in the middle
// of an overwrite: mpirun ends the job, and the old checkpoint is still
// there, whole (tests/mpi/kill_child.cpp).
#include <ckpt/checkpoint.h>
#include <ckpt/layout.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

#include "test_util.h"

using namespace ckpt::test;

#ifdef CKPT_MPI_KILL_CHILD
TEST_CASE(
    "a process killed during a multi-process overwrite keeps the old "
    "checkpoint",
    "[mpi][commit]") {
  TempDir dir;
  // Open MPI leaks at exit: no leak checks in the child.
  const auto run = [&](const std::string& args, const std::string& log) {
    const std::string command =
        "ASAN_OPTIONS=detect_leaks=0 timeout 120 mpirun --allow-run-as-root "
        "--oversubscribe -np 2 " +
        std::string(CKPT_MPI_KILL_CHILD) + " " + dir.path().string() + args +
        " >" + (dir.path() / log).string() + " 2>&1";
    return std::system(command.c_str());
  };
  const int status = run("", "mpirun.log");
  INFO(read_text(dir.path() / "mpirun.log"));
  REQUIRE(status != -1);
  // The job ended with the killed process, not with the commit.
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) != 0);
  CHECK_THAT(read_text(dir.path() / "mpirun.log"),
             !Catch::Contains("the overwrite committed"));
  const fs::path path = dir.path() / "ckpt";
  CHECK(ckpt::load(path) ==
        ckpt::Value::dict(
            {{"version", 1},
             {"w", ckpt::Array::from<int64_t>({0, 1, 2, 3, 4, 5, 6, 7})}}));
  CHECK(ckpt::check_checkpointable_bytes(path, "state"));
  const auto temporaries = [&] {
    size_t n = 0;
    for (const auto& entry : fs::directory_iterator(dir.path())) {
      n += entry.path().filename().string().rfind("ckpt.orbax-checkpoint-tmp",
                                                  0) == 0;
    }
    return n;
  };
  CHECK(temporaries() == 1);  // the dead save's

  // The next run's multi-process save removes the dead save's folder.
  const int again = run(" again", "again.log");
  INFO(read_text(dir.path() / "again.log"));
  CHECK(again == 0);
  CHECK(ckpt::load(path).at("version").as_int() == 3);
  CHECK(temporaries() == 0);
}
#endif
