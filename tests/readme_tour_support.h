// What README.md's tour leaves to the reader, filled in so that the tour
// compiles and runs as written (see tests/readme_tour.py).
#ifndef CKPT_TESTS_README_TOUR_SUPPORT_H_
#define CKPT_TESTS_README_TOUR_SUPPORT_H_

#include <ckpt/ckpt.h>
#include <ckpt/proto.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "ckpt_test.pb.h"

namespace my {
// Any protobuf message type of the host app.
using RunConfig = ckpt::test::RunConfig;
}  // namespace my

namespace readme {

// A dataset iterator that checkpoints its position.
class DatasetIterator : public ckpt::StatefulCheckpointable {
 public:
  int64_t position = 7;
  ckpt::BackgroundWork save(const std::filesystem::path& directory) override {
    const int64_t snapshot = position;
    return [directory, snapshot] {
      std::ofstream(directory / "position.txt") << snapshot;
    };
  }
  ckpt::BackgroundWork load(const std::filesystem::path& directory) override {
    return [this, directory] {
      std::ifstream(directory / "position.txt") >> position;
    };
  }
};

inline my::RunConfig make_run_config() {
  my::RunConfig config;
  config.set_name("tour");
  config.set_step(100);
  return config;
}

}  // namespace readme

inline const my::RunConfig run_config = readme::make_run_config();
inline const auto iterator = std::make_shared<readme::DatasetIterator>();
inline const std::filesystem::path path = "checkpoints/run_8";
inline const ckpt::Checkpointables items = {
    {"config", ckpt::proto_value(run_config)},
    {"step", ckpt::Value::json(100)},
};

// The tour, as README.md has it. Writes under ./checkpoints.
void readme_tour();

#endif  // CKPT_TESTS_README_TOUR_SUPPORT_H_
