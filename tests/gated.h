// A stateful checkpointable whose background tier waits for a gate: a save
// kept in flight for as long as a test needs.
#ifndef CKPT_TESTS_GATED_H_
#define CKPT_TESTS_GATED_H_

#include <ckpt/errors.h>
#include <ckpt/stateful.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <string>

namespace ckpt::test {

namespace fs = std::filesystem;

// Snapshots `value` in its blocking tier; its background tier waits for
// the gate to open, then writes (or fails with `fail_with`).
class Gated : public StatefulCheckpointable {
 public:
  int64_t value = 0;
  std::string fail_with;
  bool fail_in_blocking_tier = false;
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();

  BackgroundWork save(const fs::path& dir) override {
    if (fail_in_blocking_tier) throw InvalidArgumentError("not now");
    int64_t snapshot = value;
    std::shared_future<void> wait_for = opened;
    std::string failure = fail_with;
    return [dir, snapshot, wait_for, failure] {
      wait_for.wait();
      if (!failure.empty()) throw DataLossError(failure);
      std::ofstream(dir / "value.txt") << snapshot;
    };
  }
  BackgroundWork load(const fs::path& dir) override {
    std::ifstream in(dir / "value.txt");
    in >> value;
    return {};
  }
  void open() { gate.set_value(); }
};

}  // namespace ckpt::test

#endif  // CKPT_TESTS_GATED_H_
