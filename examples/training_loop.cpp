// The main example: a host app that embeds libckpt in a training loop.
//
// A ckpt::Checkpointer keeps the run's checkpoints in a root folder of
// numbered steps. Every 10 steps it saves the training state -- model
// parameters (a tree of arrays), the run configuration (a protobuf message,
// written as text format) and the dataset iterator (a
// StatefulCheckpointable) -- in the background while training goes on,
// keeps the latest 3 steps and the best 2 by loss, and deletes the rest.
// Started again, it resumes from the latest step. On SIGTERM or SIGINT it
// saves the step it is at, waits for the commit and exits.
//
// With CKPT_REMOTE_ROOT=s3://bucket/prefix set, every step is also
// persisted to S3 in the background (credentials and endpoint as the AWS
// tools read them), only the newest step stays on the local disk, and a
// run on a machine with an empty disk resumes from the newest remote step.
//
// CKPT_EXAMPLE_STEP_MS=N makes each training step take N ms more (a
// stand-in for real work, as tools/bench/s3_bench.py uses it).
//
//   ./build/examples/training_loop [CHECKPOINT_ROOT] [STEPS]
#include <ckpt/ckpt.h>
#include <ckpt/proto.h>
#include <ckpt/s3.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <thread>

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
  const int64_t steps_per_run = argc > 2 ? std::atoll(argv[2]) : 60;
  const char* step_ms_text = std::getenv("CKPT_EXAMPLE_STEP_MS");
  const int64_t step_ms = step_ms_text ? std::atoll(step_ms_text) : 0;

  ckpt::example::RunConfig config;
  config.set_model("mlp");
  config.set_hidden(512);
  config.set_learning_rate(0.05);
  config.set_seed(7);
  auto iterator = std::make_shared<DatasetIterator>();
  std::vector<float> kernel(512 * 512, 0.01f), bias(512, 0.0f);
  auto params = [&](int64_t step) {
    return ckpt::Value::dict({
        {"dense",
         ckpt::Value::dict({
             {"kernel", ckpt::Array::borrow(ckpt::DType::kFloat32, {512, 512},
                                            kernel.data())},
             {"bias",
              ckpt::Array::borrow(ckpt::DType::kFloat32, {512}, bias.data())},
         })},
        {"step", step},
    });
  };

  ckpt::CheckpointerOptions options;
  options.save_decision_policy = ckpt::FixedIntervalPolicy(10);
  options.preservation_policy = ckpt::AnyPreservationPolicy(
      {ckpt::LatestN(3), ckpt::BestN("loss", /*reverse=*/true, 2)});
  options.handle_preemption_signals = true;
  if (const char* remote = std::getenv("CKPT_REMOTE_ROOT")) {
    options.remote.store = ckpt::s3_store(remote);
    options.remote.keep_local = 1;
    std::printf("persisting steps to %s\n", remote);
  }
  ckpt::Checkpointer checkpointer(root, options);

  // Resume: parameters into our own buffers, the iterator in place.
  int64_t first = 1;
  if (auto latest = checkpointer.latest()) {
    auto parts = checkpointer.load_checkpointables(
        latest->step,
        {{"params",
          ckpt::Value::dict(
              {{"dense",
                ckpt::Value::dict({
                    {"kernel", ckpt::Array::borrow(ckpt::DType::kFloat32,
                                                   {512, 512}, kernel.data())},
                    {"bias", ckpt::Array::borrow(ckpt::DType::kFloat32, {512},
                                                 bias.data())},
                })},
               {"step", ckpt::Value::scalar_spec(ckpt::Value::Kind::kInt)}})},
         {"config", ckpt::proto_type<ckpt::example::RunConfig>()},
         {"dataset", ckpt::Value::stateful(iterator)}});
    config = ckpt::from_proto_value<ckpt::example::RunConfig>(parts[1].second);
    first = latest->step + 1;
    std::printf(
        "resumed from step %lld (%s): dataset at epoch %lld, position %lld\n",
        static_cast<long long>(latest->step), latest->path.c_str(),
        static_cast<long long>(iterator->epoch),
        static_cast<long long>(iterator->position));
  }

  // Where the dataset was at the newest save (the resumed step's, or a
  // save of this run's), to check the restore against at the end.
  int64_t saved_epoch = iterator->epoch, saved_position = iterator->position;
  for (int64_t step = first; step < first + steps_per_run; ++step) {
    // "Training": touch every parameter and advance the data.
    for (float& w : kernel) w = w * 0.999f + 0.001f * std::sin(step);
    for (float& b : bias) b += 0.01f;
    for (int i = 0; i < 64; ++i) iterator->next();
    std::this_thread::sleep_for(std::chrono::milliseconds(step_ms));
    const double loss = 1.0 / step + 0.05 * std::sin(0.7 * step);

    auto start = Clock::now();
    if (checkpointer.save_checkpointables_async(
            step,
            {{"params", params(step)},
             {"config", ckpt::proto_value(config)},
             {"dataset", ckpt::Value::stateful(iterator)}},
            nlohmann::json{{"loss", loss}})) {
      saved_epoch = iterator->epoch;
      saved_position = iterator->position;
      std::printf(
          "step %3lld: loss %.4f, save started; training resumed "
          "after %.2f ms\n",
          static_cast<long long>(step), loss, ms_since(start));
    }
    if (checkpointer.may_exit()) {
      std::printf("preempted: step %lld is committed, exiting\n",
                  static_cast<long long>(step));
      return 0;
    }
  }
  checkpointer.close();

  std::printf("\nkept (latest 3 and best 2 by loss):\n");
  for (const ckpt::CheckpointStep& c : checkpointer.checkpoints()) {
    std::printf("  step %3lld  loss %.4f  %s%s\n",
                static_cast<long long>(c.step), c.metrics.value("loss", 0.0),
                c.local ? c.path.c_str() : "",
                c.remote ? (c.local ? " (and remote)" : "remote only") : "");
  }

  if (!checkpointer.latest()) {
    std::printf("no step saved yet (a save every 10 steps)\n");
    return 0;
  }
  // Restore a subset of the newest step: the iterator, not the parameters.
  auto restored = std::make_shared<DatasetIterator>();
  checkpointer.load_checkpointables(
      std::nullopt, {{"dataset", ckpt::Value::stateful(restored)}});
  std::printf(
      "restored dataset iterator at epoch %lld, position %lld (saved at "
      "epoch %lld, position %lld)\n",
      static_cast<long long>(restored->epoch),
      static_cast<long long>(restored->position),
      static_cast<long long>(saved_epoch),
      static_cast<long long>(saved_position));
  return restored->epoch == saved_epoch && restored->position == saved_position
             ? 0
             : 1;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const ckpt::Error& e) {
    std::fprintf(stderr, "training_loop: %s\n", e.what());
    return 1;
  }
}
