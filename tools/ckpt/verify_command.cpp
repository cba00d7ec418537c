// `ckpt verify DIR`: completeness; each checkpointable's bytes against the
// checksums recorded at commit, and its meaning by loading it (which checks
// the checksums a handler keeps), with one status each. A checkpointable
// whose plugin is not loaded, or that is damaged, is a problem (exit 1).
#include <ckpt/checkpoint.h>
#include <ckpt/errors.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "host_types.h"

namespace ckpt::tool {

namespace fs = std::filesystem;

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

// The statuses of `ckpt verify`, one per checkpointable (README: "ckpt
// verify"). The last two are problems.
constexpr const char* kOk = "ok";
constexpr const char* kBytesOk = "bytes ok (meaning needs the host app)";
constexpr const char* kUnchecked = "no checksums recorded";
constexpr const char* kNoPlugin = "no plugin claims it";
constexpr const char* kDamaged = "damaged";
constexpr const char* kAbsent = "absent";

struct Result {
  std::string name, status, detail;
  bool problem() const { return status == kNoPlugin || status == kDamaged; }
};

// Checks one checkpointable: its bytes against the checksums recorded at
// commit, then its meaning by loading it when a plugin can.
Result verify_one(const std::string& dir, const CheckpointInfo& info,
                  const std::string& name) {
  Result r{name, kOk, ""};
  try {
    const bool checked = check_checkpointable_bytes(dir, name);
    const std::string host_only = needs_host_type(info, name);
    if (auto typestr = unclaimed_typestr(info, name)) {
      r.status = kNoPlugin;
      r.detail = no_plugin_text(*typestr);
    } else if (!host_only.empty()) {
      r.status = checked ? kBytesOk : kUnchecked;
      r.detail = host_only;
    } else {
      load_checkpointables(dir, {{name, Value()}});
      if (!checked) {
        r.status = kUnchecked;
        r.detail =
            "it loads, but its files carry no checksums (saved by "
            "Orbax or an older ckpt)";
      }
    }
  } catch (const Error& e) {
    // A format no loaded plugin reads yet is not damage.
    r.status = e.kind() == ErrorKind::kUnimplemented ? kNoPlugin : kDamaged;
    r.detail = e.what();
  }
  return r;
}

void print_result(const Result& r) {
  std::printf("%s: %s%s%s\n", r.name.c_str(), r.status.c_str(),
              r.detail.empty() ? "" : ": ", r.detail.c_str());
}

}  // namespace

int run_verify(const Common& common, const std::string& dir) {
  const CheckpointInfo info = read_checkpoint_info(dir);  // completeness
  std::vector<std::string> names = list_checkpointables(info);
  if (has_metrics_folder(info)) names.push_back(kMetricsName);
  const bool bar = !common.json && ::isatty(STDERR_FILENO);
  std::vector<Result> results;
  for (size_t i = 0; i < names.size(); ++i) {
    if (bar) progress(i, names.size(), names[i]);
    results.push_back(verify_one(dir, info, names[i]));
    if (!bar && !common.json) print_result(results.back());
  }
  if (bar) {
    progress(names.size(), names.size(), "");
    for (const Result& r : results) print_result(r);
  }
  // Recorded handlers without a folder. Orbax records some that save
  // nothing (its descriptor) and loads a checkpoint whose checkpointable
  // was deleted; ckpt's checksums say whether a folder was committed.
  for (const auto& [name, typestr] : info.item_handlers) {
    bool present = false;
    for (const auto& n : names) present |= n == name;
    if (!present) {
      results.push_back(
          {name, info.checksums_recorded ? kDamaged : kAbsent,
           "recorded as saved by " + typestr + " but has no folder"});
      if (!common.json) print_result(results.back());
    }
  }
  size_t problems = 0, damaged = 0, unchecked = 0, bytes_only = 0;
  for (const Result& r : results) {
    problems += r.problem();
    damaged += r.status == kDamaged;
    unchecked += r.status == kUnchecked;
    bytes_only += r.status == kBytesOk;
  }
  if (common.json) {
    nlohmann::ordered_json out = {
        {"path", info.path.string()},
        {"complete", true},
        {"checksums_recorded", info.checksums_recorded},
        {"problems", problems},
        {"checkpointables", nlohmann::ordered_json::array()}};
    for (const Result& r : results) {
      out["checkpointables"].push_back(
          {{"name", r.name}, {"status", r.status}, {"detail", r.detail}});
    }
    std::cout << out.dump(2) << "\n";
  } else {
    std::printf(
        "%s: %zu checkpointable%s, %zu problem%s (%zu damaged, %zu without a "
        "plugin), %zu checked by bytes only, %zu without checksums\n",
        info.path.c_str(), results.size(), results.size() == 1 ? "" : "s",
        problems, problems == 1 ? "" : "s", damaged, problems - damaged,
        bytes_only, unchecked);
  }
  return problems ? 1 : 0;
}

}  // namespace ckpt::tool
