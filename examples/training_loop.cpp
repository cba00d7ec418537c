// The main example: a host app that embeds libckpt in a training loop.
//
// Every few steps it saves the training state -- model parameters (a tree
// of arrays), the run configuration (a protobuf message, written as text
// format) and the dataset iterator (a StatefulCheckpointable) -- with
// save_checkpointables_async, and keeps training while the checkpoint is
// written. At the end it restores the iterator and config from the newest
// checkpoint, without touching the parameters.
//
//   ./build/examples/training_loop [CHECKPOINT_ROOT]
#include <ckpt/ckpt.h>
#include <ckpt/proto.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "run_config.pb.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// A dataset reader whose position must survive restarts.
class DatasetIterator : public ckpt::StatefulCheckpointable {
 public:
  int64_t epoch = 0;
  int64_t position = 0;

  void next() {
    if (++position == 1000) {
      position = 0;
      ++epoch;
    }
  }

  ckpt::BackgroundWork save(const fs::path& dir) override {
    // Blocking tier: snapshot. Background tier: write.
    nlohmann::json state = {{"epoch", epoch}, {"position", position}};
    return
        [dir, state] { std::ofstream(dir / "iterator.json") << state.dump(); };
  }
  ckpt::BackgroundWork load(const fs::path& dir) override {
    return [this, dir] {
      std::ifstream in(dir / "iterator.json");
      nlohmann::json state = nlohmann::json::parse(in);
      epoch = state.at("epoch");
      position = state.at("position");
    };
  }
};

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start)
      .count();
}

}  // namespace

int run(int argc, char** argv) {
  const fs::path root = argc > 1 ? argv[1] : "demo-checkpoints";
  fs::create_directories(root);

  ckpt::example::RunConfig config;
  config.set_model("mlp");
  config.set_hidden(512);
  config.set_learning_rate(0.05);
  config.set_seed(7);
  auto iterator = std::make_shared<DatasetIterator>();
  std::vector<float> kernel(512 * 512, 0.01f), bias(512, 0.0f);

  ckpt::AsyncSave in_flight;
  fs::path newest;
  for (int step = 1; step <= 30; ++step) {
    // "Training": touch every parameter and advance the data.
    for (float& w : kernel) w = w * 0.999f + 0.001f * std::sin(step);
    for (float& b : bias) b += 0.01f;
    for (int i = 0; i < 64; ++i) iterator->next();

    if (step % 10 != 0) continue;
    if (!in_flight.path().empty()) in_flight.result();  // one save at a time
    ckpt::Value params = ckpt::Value::dict({
        {"dense",
         ckpt::Value::dict({
             {"kernel", ckpt::Array::borrow(ckpt::DType::kFloat32, {512, 512},
                                            kernel.data())},
             {"bias",
              ckpt::Array::borrow(ckpt::DType::kFloat32, {512}, bias.data())},
         })},
        {"step", step},
    });
    newest = root / ("step_" + std::to_string(step));
    ckpt::SaveOptions options;
    options.overwrite = true;
    options.custom_metadata = {{"step", step}};
    options.metrics = nlohmann::json{{"loss", 1.0 / step}};
    auto start = Clock::now();
    in_flight = ckpt::save_checkpointables_async(
        newest,
        {{"params", params},
         {"config", ckpt::proto_value(config)},
         {"dataset", ckpt::Value::stateful(iterator)}},
        options);
    std::printf(
        "step %2d: checkpoint %s started; training resumed after %.2f ms\n",
        step, newest.c_str(), ms_since(start));
  }
  in_flight.result();
  std::printf("all checkpoints committed\n\n");

  // What is on disk.
  auto meta = ckpt::checkpointables_metadata(newest);
  std::printf("%s:\n", newest.c_str());
  for (const auto& [name, typestr] : meta.checkpoint.item_handlers) {
    std::printf("  %-8s saved by %s\n", name.c_str(), typestr.c_str());
  }
  for (const auto& entry : fs::directory_iterator(newest)) {
    std::printf("  %s%s\n", entry.path().filename().c_str(),
                entry.is_directory() ? "/" : "");
  }

  // Restore a subset: the config and the iterator, not the parameters.
  auto restored = std::make_shared<DatasetIterator>();
  auto parts = ckpt::load_checkpointables(
      newest, {{"config", ckpt::proto_type<ckpt::example::RunConfig>()},
               {"dataset", ckpt::Value::stateful(restored)}});
  auto restored_config =
      ckpt::from_proto_value<ckpt::example::RunConfig>(parts[0].second);
  std::printf("\nrestored config { %s }\n",
              restored_config.ShortDebugString().c_str());
  std::printf(
      "restored dataset iterator at epoch %lld, position %lld (saved at "
      "epoch %lld, position %lld)\n",
      static_cast<long long>(restored->epoch),
      static_cast<long long>(restored->position),
      static_cast<long long>(iterator->epoch),
      static_cast<long long>(iterator->position));
  return restored->position == iterator->position ? 0 : 1;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const ckpt::Error& e) {
    std::fprintf(stderr, "training_loop: %s\n", e.what());
    return 1;
  }
}
