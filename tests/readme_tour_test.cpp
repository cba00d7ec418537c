// README.md's five-minute tour is compiled from the README itself (see
// tests/readme_tour.py) and run here, so the README and the code cannot
// drift apart.
#include <unistd.h>

#include <catch2/catch.hpp>

#include "readme_tour_support.h"
#include "test_util.h"

using namespace ckpt::test;

TEST_CASE("the README tour compiles and runs as written", "[readme]") {
  TempDir dir;
  const fs::path before = fs::current_path();
  fs::current_path(dir.path());
  try {
    readme_tour();
  } catch (...) {
    fs::current_path(before);
    throw;
  }
  fs::current_path(before);
  CHECK(fs::is_directory(dir / "checkpoints" / "step_100" / "state"));
  CHECK(fs::is_directory(dir / "checkpoints" / "run_7" / "dataset"));
  CHECK(fs::is_regular_file(dir / "checkpoints" / "run_9" / "config" /
                            "run.pbtxt"));
}
