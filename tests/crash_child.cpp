// Saves checkpoints forever, for the crash-consistency test: each round
// overwrites <dir>/ckpt and writes a new <dir>/step_<n>, printing a line to
// stdout after each commit. The test kills it with SIGKILL at random moments.
#include <ckpt/checkpoint.h>

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: crash_child DIR FIRST_STEP\n");
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  long long step = std::atoll(argv[2]);
  for (;; ++step) {
    std::string payload(256 * 1024, static_cast<char>('a' + step % 26));
    ckpt::Value value =
        ckpt::Value::json({{"step", step}, {"payload", payload}});
    ckpt::SaveOptions overwrite;
    overwrite.overwrite = true;
    ckpt::save_checkpointables(dir / "ckpt", {{"data", value}}, overwrite);
    std::printf("overwrote %lld\n", step);
    std::fflush(stdout);
    ckpt::save_checkpointables(dir / ("step_" + std::to_string(step)),
                               {{"data", value}});
    std::printf("created %lld\n", step);
    std::fflush(stdout);
  }
}
