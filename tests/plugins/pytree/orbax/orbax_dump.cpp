// orbax_dump: what ckpt's C++ API loads from a checkpoint, written out for
// orbax_interop.py to compare with what Orbax saved.
//
//   orbax_dump checkpoint PATH OUT    every checkpointable of PATH
//   orbax_dump checkpointer ROOT OUT  the steps of a Checkpointer root,
//                                     with their metrics, folders and the
//                                     root's custom metadata (the driver
//                                     loads each step's checkpointables
//                                     with `checkpoint`)
//   orbax_dump save-checkpointer ROOT OUT
//                                     the other way: a Checkpointer saves
//                                     steps with metrics into ROOT in
//                                     Orbax's storage, keeping the latest
//                                     3, with root metadata; OUT/spec.json
//                                     is what Orbax should find there
//
// OUT/spec.json describes the values in spec_dump.h's format. A load that
// fails writes {"error": {"kind": KIND, "message": TEXT}} instead, and the
// program still exits 0: refusing is an outcome the driver checks against
// the cases README lists.
#include <ckpt/checkpoint.h>
#include <ckpt/checkpointer.h>
#include <ckpt/context.h>
#include <ckpt/errors.h>
#include <ckpt/value.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "spec_dump.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;
using orbax_test::Dumper;

json error_of(const ckpt::Error& e) {
  return {{"error",
           {{"kind", ckpt::error_kind_name(e.kind())}, {"message", e.what()}}}};
}

// Every checkpointable of `path`, by name.
json dump_checkpoint(const fs::path& path, Dumper& dumper) {
  try {
    json out = json::object();
    for (const auto& [name, value] : ckpt::load_checkpointables(path)) {
      out[name] = dumper.spec(value);
    }
    return {{"checkpointables", out}};
  } catch (const ckpt::Error& e) {
    return error_of(e);
  }
}

json dump_checkpointer(const fs::path& root) {
  try {
    ckpt::Checkpointer checkpointer(root);
    json steps = json::array();
    for (const ckpt::CheckpointStep& step : checkpointer.checkpoints()) {
      steps.push_back({{"step", step.step},
                       {"metrics", step.metrics},
                       {"path", step.path.string()}});
    }
    const auto latest = checkpointer.latest();
    return {{"steps", steps},
            {"latest", latest ? json(latest->step) : json(nullptr)},
            {"root_metadata", checkpointer.root_metadata().custom_metadata}};
  } catch (const ckpt::Error& e) {
    return error_of(e);
  }
}

// Saves steps 0..5 of a small training state with a loss each, in Orbax's
// storage, keeping the latest 3; returns what Orbax should find.
json save_checkpointer(const fs::path& root, Dumper& dumper) {
  ckpt::ContextOptions context_options;
  context_options.handler_options = {{"pytree", {{"storage", "orbax"}}}};
  ckpt::Context context(context_options);
  ckpt::CheckpointerOptions options;
  options.preservation_policy = ckpt::LatestN(3);
  options.custom_metadata = {{"run", "ckpt-interop"}, {"lr", 0.001}};
  ckpt::Checkpointer checkpointer(root, options);
  json steps = json::array();
  for (int64_t step = 0; step <= 5; ++step) {
    std::vector<float> w(12);
    for (size_t i = 0; i < w.size(); ++i) {
      w[i] = static_cast<float>(step) + 0.25f * static_cast<float>(i);
    }
    const ckpt::Value state = ckpt::Value::dict(
        {{"params", ckpt::Value::dict(
                        {{"w", ckpt::Array::from<float>(w, {3, 4})},
                         {"b", ckpt::Array::from<int32_t>(
                                   {1, 2, static_cast<int32_t>(step)}, {3})}})},
         {"step", step}});
    const nlohmann::json metrics = {
        {"loss", 1.0 / static_cast<double>(step + 1)}};
    checkpointer.save_pytree(step, state, metrics, /*force=*/true);
    checkpointer.wait();
    steps.push_back(
        {{"step", step},
         {"metrics", metrics},
         {"content",
          {{"checkpointables",
            {{ckpt::kDefaultCheckpointableName, dumper.spec(state)}}}}}});
  }
  checkpointer.close();
  json kept = json::array();
  for (size_t i = steps.size() - 3; i < steps.size(); ++i)
    kept.push_back(steps[i]);
  return {{"steps", kept},
          {"latest", 5},
          {"root_metadata", options.custom_metadata}};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr
        << "usage: orbax_dump checkpoint|checkpointer|save-checkpointer PATH "
           "OUT\n";
    return 2;
  }
  const std::string mode = argv[1];
  Dumper dumper(argv[3]);
  json out;
  if (mode == "checkpoint") {
    out = dump_checkpoint(argv[2], dumper);
  } else if (mode == "checkpointer") {
    out = dump_checkpointer(argv[2]);
  } else if (mode == "save-checkpointer") {
    out = save_checkpointer(argv[2], dumper);
  } else {
    std::cerr << "orbax_dump: unknown mode " << mode << "\n";
    return 2;
  }
  std::ofstream(fs::path(argv[3]) / "spec.json") << out.dump(1) << "\n";
  return 0;
}
