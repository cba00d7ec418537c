// `ckpt info DIR`: what a checkpoint is and which handler would load each
// of its checkpointables now.
#include <ckpt/checkpoint.h>
#include <ckpt/checkpointer.h>
#include <ckpt/errors.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "format.h"
#include "host_types.h"

namespace ckpt::tool {

namespace {

const char* layout_text(LayoutVersion layout) {
  switch (layout) {
    case LayoutVersion::kV1:
      return "v1 (orbax.checkpoint marker)";
    case LayoutVersion::kV0Composite:
      return "v0 composite (no marker)";
    case LayoutVersion::kV0Flat:
      return "v0 flat pytree (no marker)";
  }
  return "unknown";
}

struct Row {
  std::string name, saved_by, loaded_by, error, no_plugin;
  uint64_t bytes = 0;
  bool present = true;
};

void print_json(const CheckpointInfo& info, const std::string& shown,
                const std::vector<Row>& rows, uint64_t total) {
  nlohmann::ordered_json out;
  out["path"] = shown;
  out["layout"] = info.layout == LayoutVersion::kV1            ? "v1"
                  : info.layout == LayoutVersion::kV0Composite ? "v0-composite"
                                                               : "v0-flat";
  out["complete"] = true;
  out["init_timestamp_nsecs"] =
      info.init_timestamp_nsecs
          ? nlohmann::ordered_json(*info.init_timestamp_nsecs)
          : nlohmann::ordered_json(nullptr);
  out["commit_timestamp_nsecs"] =
      info.commit_timestamp_nsecs
          ? nlohmann::ordered_json(*info.commit_timestamp_nsecs)
          : nlohmann::ordered_json(nullptr);
  out["custom_metadata"] =
      nlohmann::ordered_json::parse(info.custom_metadata.dump());
  out["metrics"] = nlohmann::ordered_json::parse(info.metrics.dump());
  out["checkpointables"] = nlohmann::ordered_json::array();
  for (const Row& r : rows) {
    out["checkpointables"].push_back({
        {"name", r.name},
        {"present", r.present},
        {"saved_by", r.saved_by.empty() ? nlohmann::ordered_json(nullptr)
                                        : nlohmann::ordered_json(r.saved_by)},
        {"loaded_by", r.loaded_by.empty()
                          ? nlohmann::ordered_json(nullptr)
                          : nlohmann::ordered_json(r.loaded_by)},
        {"no_plugin", r.no_plugin.empty()
                          ? nlohmann::ordered_json(nullptr)
                          : nlohmann::ordered_json(r.no_plugin)},
        {"resolution_error", r.error.empty() ? nlohmann::ordered_json(nullptr)
                                             : nlohmann::ordered_json(r.error)},
        {"bytes", r.bytes},
    });
  }
  out["bytes"] = total;
  std::cout << out.dump(2) << "\n";
}

void print_text(const CheckpointInfo& info, const std::string& shown,
                const std::vector<Row>& rows, uint64_t total) {
  std::printf("checkpoint  %s\n", shown.c_str());
  std::printf("layout      %s\n", layout_text(info.layout));
  std::printf("complete    yes (committed %s)\n",
              time_text(info.commit_timestamp_nsecs).c_str());
  std::printf("started     %s\n", time_text(info.init_timestamp_nsecs).c_str());
  std::printf("size        %s\n", human_bytes(total).c_str());
  if (!info.custom_metadata.empty()) {
    std::printf("custom      %s\n", info.custom_metadata.dump().c_str());
  }
  if (!info.metrics.empty())
    std::printf("metrics     %s\n", info.metrics.dump().c_str());
  std::printf("\n%-16s %-10s %s\n", "CHECKPOINTABLE", "SIZE",
              "SAVED BY / LOADED BY NOW");
  for (const Row& r : rows) {
    std::printf("%-16s %-10s %s\n", r.name.c_str(),
                r.present ? human_bytes(r.bytes).c_str() : "absent",
                r.saved_by.empty() ? "(not recorded)" : r.saved_by.c_str());
    if (!r.no_plugin.empty()) {
      std::printf("%-16s %-10s !! %s\n", "", "", r.no_plugin.c_str());
    }
    std::printf("%-16s %-10s -> %s\n", "", "",
                r.loaded_by.empty() ? ("no handler: " + r.error).c_str()
                                    : r.loaded_by.c_str());
  }
}

// read_checkpoint_info, except that a root of step checkpoints is an error
// that points at `ckpt ls`.
CheckpointInfo read_info_or_point_at_ls(const std::string& dir) {
  try {
    return read_checkpoint_info(dir);
  } catch (const InvalidLayoutError&) {
    RootListing root;
    try {
      root = list_checkpoint_root(dir);
    } catch (const Error&) {
    }
    const bool any_committed =
        std::any_of(root.steps.begin(), root.steps.end(),
                    [](const StepFolder& step) { return step.committed; });
    if (!any_committed) throw;
    throw InvalidLayoutError(
        dir + " is not a checkpoint but a root of " +
        std::to_string(root.steps.size()) + " step checkpoint(s)" +
        (root.steps.empty()
             ? std::string()
             : " (steps " + std::to_string(root.steps.front().checkpoint.step) +
                   " to " + std::to_string(root.steps.back().checkpoint.step) +
                   ")") +
        "; list them with `ckpt ls " + dir + "`");
  }
}

}  // namespace

int run_info(const Common& common, const std::string& dir) {
  const CheckpointInfo info = read_info_or_point_at_ls(dir);
  const std::vector<std::string> names = list_checkpointables(info);
  std::vector<Row> rows;
  auto add_row = [&](const std::string& name, bool present) {
    Row row;
    row.name = name;
    row.present = present;
    row.saved_by = info.typestr_of(name).value_or("");
    if (auto typestr = unclaimed_typestr(info, name)) {
      row.no_plugin = no_plugin_text(*typestr);
    }
    try {
      row.loaded_by = resolve_checkpointable_handler(info, name)->typestr();
    } catch (const Error& e) {
      row.error = e.what();
    }
    if (present) {
      row.bytes = bytes_on_disk(info.folder_of(name));
    }
    rows.push_back(row);
  };
  for (const auto& name : names) add_row(name, true);
  for (const auto& [name, typestr] : info.item_handlers) {
    bool listed = false;
    for (const auto& n : names) listed |= n == name;
    if (!listed && name != kMetricsName) add_row(name, false);
  }
  const uint64_t total = bytes_on_disk(info.path);

  const std::string shown =
      common.shown_as.empty() ? info.path.string() : common.shown_as;
  if (common.json) {
    print_json(info, shown, rows, total);
  } else {
    print_text(info, shown, rows, total);
  }
  return 0;
}

}  // namespace ckpt::tool
