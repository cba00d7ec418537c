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
  const std::string command =
      "ASAN_OPTIONS=detect_leaks=0 timeout 120 mpirun --allow-run-as-root "
      "--oversubscribe -np 2 " +
      std::string(CKPT_MPI_KILL_CHILD) + " " + dir.path().string() + " >" +
      (dir.path() / "mpirun.log").string() + " 2>&1";
  const int status = std::system(command.c_str());
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
}
#endif
