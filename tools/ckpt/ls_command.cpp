// `ckpt ls ROOT`: the step checkpoints of a training run's root folder,
// oldest first, and the temporary folders beside them.
#include <ckpt/checkpointer.h>
#include <ckpt/errors.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "format.h"

namespace ckpt::tool {

namespace {

int64_t nsecs_of(std::chrono::system_clock::time_point time) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             time.time_since_epoch())
      .count();
}

const char* owner_text(TemporaryFolder::Owner owner) {
  switch (owner) {
    case TemporaryFolder::Owner::kGone:
      return "leftover: its save died (removed when a Checkpointer opens the "
             "root)";
    case TemporaryFolder::Owner::kAlive:
      return "a save in progress";
    case TemporaryFolder::Owner::kOtherHost:
      return "leftover or in progress on another host";
    case TemporaryFolder::Owner::kOtherBoot:
      return "leftover from before this host's last boot";
    case TemporaryFolder::Owner::kUnknown:
      break;
  }
  return "owner unknown";
}

const char* owner_key(TemporaryFolder::Owner owner) {
  switch (owner) {
    case TemporaryFolder::Owner::kGone:
      return "gone";
    case TemporaryFolder::Owner::kAlive:
      return "alive";
    case TemporaryFolder::Owner::kOtherHost:
      return "other-host";
    case TemporaryFolder::Owner::kOtherBoot:
      return "other-boot";
    case TemporaryFolder::Owner::kUnknown:
      break;
  }
  return "unknown";
}

}  // namespace

int run_ls(const Common& common, const std::string& root) {
  const RootListing listing =
      list_checkpoint_root(root, std::nullopt, /*with_sizes=*/true);
  if (common.json) {
    nlohmann::ordered_json out;
    out["root"] = root;
    out["step_name_format"] = {
        {"prefix", listing.format.prefix},
        {"fixed_length",
         listing.format.fixed_length
             ? nlohmann::ordered_json(*listing.format.fixed_length)
             : nlohmann::ordered_json(nullptr)}};
    out["steps"] = nlohmann::ordered_json::array();
    for (const StepFolder& s : listing.steps) {
      nlohmann::ordered_json step;
      step["step"] = s.checkpoint.step;
      step["path"] = s.checkpoint.path.string();
      step["state"] = s.committed ? "committed" : "incomplete";
      step["commit_timestamp_nsecs"] =
          s.committed ? nlohmann::ordered_json(nsecs_of(s.checkpoint.time))
                      : nlohmann::ordered_json(nullptr);
      step["bytes"] = s.checkpoint.size_bytes.value_or(0);
      step["metrics"] =
          nlohmann::ordered_json::parse(s.checkpoint.metrics.dump());
      if (!s.committed) step["problem"] = s.problem;
      out["steps"].push_back(step);
    }
    out["temporaries"] = nlohmann::ordered_json::array();
    for (const TemporaryFolder& t : listing.temporaries) {
      out["temporaries"].push_back(
          {{"path", t.path.string()},
           {"state", "leftover temporary"},
           {"owner", owner_key(t.owner)},
           {"owner_description", t.owner_description}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::printf("%-12s %-11s %-24s %-10s %s\n", "STEP", "STATE", "COMMITTED",
              "SIZE", "METRICS");
  for (const StepFolder& s : listing.steps) {
    const std::string metrics =
        s.checkpoint.metrics.is_null() ? "-" : s.checkpoint.metrics.dump();
    std::printf(
        "%-12lld %-11s %-24s %-10s %s\n",
        static_cast<long long>(s.checkpoint.step),
        s.committed ? "committed" : "incomplete",
        s.committed ? time_text(nsecs_of(s.checkpoint.time)).c_str() : "-",
        human_bytes(s.checkpoint.size_bytes.value_or(0)).c_str(),
        s.committed ? metrics.c_str() : s.problem.c_str());
  }
  for (const TemporaryFolder& t : listing.temporaries) {
    std::printf("%-12s %-11s %s: %s (%s)\n", "-", "temporary",
                t.path.filename().c_str(), owner_text(t.owner),
                t.owner_description.c_str());
  }
  if (listing.steps.empty() && listing.temporaries.empty()) {
    std::printf("(no step checkpoints in %s)\n", root.c_str());
  }
  return 0;
}

}  // namespace ckpt::tool
