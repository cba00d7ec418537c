// `ckpt verify DIR`: completeness, every checkpointable loadable (which
// checks every checksum a handler keeps), each problem named. A
// checkpointable whose plugin is not loaded is a problem; one that only the
// host app can load is skipped, and the summary says so.
#include <ckpt/checkpoint.h>
#include <ckpt/errors.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "host_types.h"

namespace ckpt::tool {

namespace {

void progress(size_t done, size_t total, const std::string& name) {
  const int width = 30;
  int filled = total ? static_cast<int>(width * done / total) : width;
  std::fprintf(
      stderr, "\r[%s%s] %zu/%zu %-30.30s", std::string(filled, '#').c_str(),
      std::string(width - filled, ' ').c_str(), done, total, name.c_str());
  if (done == total) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

}  // namespace

int run_verify(const Common& common, const std::string& dir) {
  const CheckpointInfo info = read_checkpoint_info(dir);  // completeness
  const std::vector<std::string> names = list_checkpointables(info);
  const bool bar = !common.json && ::isatty(STDERR_FILENO);
  struct Result {
    std::string name, status, detail;
  };
  std::vector<Result> results;
  size_t problems = 0, skipped = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    if (bar) progress(i, names.size(), name);
    Result r{name, "ok", ""};
    try {
      const std::string host_only = needs_host_type(info, name);
      if (auto typestr = unclaimed_typestr(info, name)) {
        r.status = "failed";
        r.detail = no_plugin_text(*typestr);
        ++problems;
      } else if (!host_only.empty()) {
        r.status = "skipped";
        r.detail = host_only;
        ++skipped;
      } else {
        load_checkpointables(dir, {{name, Value()}});
      }
    } catch (const Error& e) {
      r.status = "failed";
      r.detail = e.what();
      ++problems;
    }
    if (!bar && !common.json) {
      std::printf("%-7s %s%s%s\n", r.status.c_str(), name.c_str(),
                  r.detail.empty() ? "" : ": ", r.detail.c_str());
    }
    results.push_back(r);
  }
  if (bar) {
    progress(names.size(), names.size(), "");
    for (const Result& r : results) {
      if (r.status != "ok") {
        std::printf("%-7s %s: %s\n", r.status.c_str(), r.name.c_str(),
                    r.detail.c_str());
      }
    }
  }
  // Recorded handlers whose folder is gone.
  for (const auto& [name, typestr] : info.item_handlers) {
    bool present = false;
    for (const auto& n : names) present |= n == name;
    if (!present && name != kMetricsName) {
      results.push_back(
          {name, "absent",
           "recorded as saved by " + typestr + " but has no folder"});
      ++problems;
      if (!common.json)
        std::printf("absent  %s: %s\n", name.c_str(),
                    results.back().detail.c_str());
    }
  }
  if (common.json) {
    nlohmann::ordered_json out = {
        {"path", info.path.string()},
        {"complete", true},
        {"problems", problems},
        {"skipped", skipped},
        {"checkpointables", nlohmann::ordered_json::array()}};
    for (const Result& r : results) {
      out["checkpointables"].push_back(
          {{"name", r.name}, {"status", r.status}, {"detail", r.detail}});
    }
    std::cout << out.dump(2) << "\n";
  } else {
    std::printf("%s: %zu checkpointable%s, %zu problem%s, %zu skipped\n",
                info.path.c_str(), names.size(), names.size() == 1 ? "" : "s",
                problems, problems == 1 ? "" : "s", skipped);
  }
  return problems ? 1 : 0;
}

}  // namespace ckpt::tool
