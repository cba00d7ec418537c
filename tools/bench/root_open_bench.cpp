// How long a Checkpointer takes to open a root of many steps.
//
//   root_open_bench DIR [--steps N] [--files F] [--rounds R]
//
// Makes DIR/root (once; later runs reuse it) with N steps of F small files
// each, as a Checkpointer saves them (a stateful checkpointable writing F
// files, and metrics), then opens it R times, each in a fresh Checkpointer,
// and prints the median time of the open, of latest(), of checkpoints()
// after it (which reads every step), and of list_checkpoint_root with and
// without sizes. Defaults: 5000 steps of 200
// files, 5 rounds.
#include <ckpt/checkpoint.h>
#include <ckpt/checkpointer.h>
#include <ckpt/stateful.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "timing.h"

namespace fs = std::filesystem;

namespace {

using ckpt_bench::Clock;
using ckpt_bench::median;
using ckpt_bench::seconds_since;

class ManyFiles final : public ckpt::StatefulCheckpointable {
 public:
  explicit ManyFiles(int files) : files_(files) {}
  ckpt::BackgroundWork save(const fs::path& dir) override {
    for (int i = 0; i < files_; ++i) {
      std::ofstream(dir / ("f" + std::to_string(i))) << i;
    }
    return nullptr;
  }
  ckpt::BackgroundWork load(const fs::path&) override { return nullptr; }

 private:
  int files_;
};

// Saves step 0, then copies it to steps 1..steps-1 (a save per step would
// take minutes; the copies are byte for byte what the save wrote).
void make_root(const fs::path& root, int steps, int files) {
  if (fs::exists(root / std::to_string(steps - 1))) return;
  fs::remove_all(root);
  {
    ckpt::Checkpointer checkpointer(root);
    checkpointer.save_checkpointables(
        0,
        {{"state", ckpt::Value::stateful(std::make_shared<ManyFiles>(files))}},
        nlohmann::json{{"loss", 1.0}});
    checkpointer.close();
  }
  for (int s = 1; s < steps; ++s) {
    fs::copy(root / "0", root / std::to_string(s), fs::copy_options::recursive);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: root_open_bench DIR [--steps N] [--files F] "
                 "[--rounds R]\n");
    return 2;
  }
  int steps = 5000, files = 200, rounds = 5;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int value = std::atoi(argv[i + 1]);
    if (value < 1) {
      std::fprintf(stderr, "%s needs a positive number\n", flag.c_str());
      return 2;
    }
    if (flag == "--steps") {
      steps = value;
    } else if (flag == "--files") {
      files = value;
    } else if (flag == "--rounds") {
      rounds = value;
    } else {
      std::fprintf(stderr, "unknown option %s\n", flag.c_str());
      return 2;
    }
  }
  const fs::path root = fs::path(argv[1]) / "root";
  make_root(root, steps, files);
  std::vector<double> open, latest, all, listing, sized;
  for (int r = 0; r < rounds; ++r) {
    auto start = Clock::now();
    ckpt::Checkpointer checkpointer(root);
    open.push_back(seconds_since(start));
    start = Clock::now();
    if (!checkpointer.latest()) return 1;
    latest.push_back(seconds_since(start));
    start = Clock::now();
    if (checkpointer.checkpoints().size() != static_cast<size_t>(steps)) {
      return 1;
    }
    all.push_back(seconds_since(start));
    checkpointer.close();
    start = Clock::now();
    ckpt::list_checkpoint_root(root);
    listing.push_back(seconds_since(start));
    start = Clock::now();
    ckpt::list_checkpoint_root(root, std::nullopt, /*with_sizes=*/true);
    sized.push_back(seconds_since(start));
  }
  std::printf(
      "root of %d steps x %d files, median of %d: open %.4f s, latest() "
      "%.6f s, then checkpoints() %.3f s; list_checkpoint_root %.3f s, with "
      "sizes %.3f s\n",
      steps, files, rounds, median(open), median(latest), median(all),
      median(listing), median(sized));
  return 0;
}
