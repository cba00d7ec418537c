// The tool's s3:// paths: `ckpt cp SRC DST` between the local disk and S3
// (either way), `ckpt ls s3://...` of a remote root's steps, and the
// fetch of a remote checkpoint into a temporary folder for info, tree,
// cat and verify.
#include <ckpt/checkpointer.h>
#include <ckpt/errors.h>
#include <ckpt/remote.h>
#include <ckpt/s3.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "format.h"

namespace ckpt::tool {

namespace {

namespace fs = std::filesystem;

// "s3://bucket/a/b" -> the store at "s3://bucket/a" and the prefix "b".
std::shared_ptr<RemoteStore> store_of(const std::string& url,
                                      std::string& prefix) {
  std::string trimmed = url;
  while (trimmed.size() > 5 && trimmed.back() == '/') trimmed.pop_back();
  const size_t slash = trimmed.rfind('/');
  if (slash < 5 || trimmed.find('/', 5) == std::string::npos) {
    throw InvalidArgumentError("'" + url +
                               "' names no checkpoint: s3://BUCKET/PATH");
  }
  prefix = trimmed.substr(slash + 1);
  return s3_store(trimmed.substr(0, slash));
}

// The step a folder name stands for in any of Orbax's step name formats
// ("5", "ckpt_5", "00000005", "ckpt_00000005"); nullopt for other names.
std::optional<int64_t> step_of(const std::string& name) {
  StepNameFormat format;
  const size_t underscore = name.rfind('_');
  if (underscore != std::string::npos)
    format.prefix = name.substr(0, underscore);
  const size_t digits =
      name.size() - (underscore == std::string::npos ? 0 : underscore + 1);
  try {
    format.check();
    if (std::optional<int64_t> step = format.parse(name)) return step;
    format.fixed_length = static_cast<int>(digits);
    format.check();
    return format.parse(name);
  } catch (const InvalidArgumentError&) {
    return std::nullopt;
  }
}

}  // namespace

FetchedCheckpoint::FetchedCheckpoint(const std::string& path,
                                     const std::vector<std::string>& only) {
  if (!is_s3_url(path)) {
    path_ = path;
    return;
  }
  std::string prefix;
  auto store = store_of(path, prefix);
  const fs::path base = fs::temp_directory_path() / "ckpt-fetch-XXXXXX";
  std::string pattern = base.string();
  if (!::mkdtemp(pattern.data())) {
    throw_os_error(errno, "cannot create a folder in " +
                              fs::temp_directory_path().string());
  }
  temp_ = pattern;
  path_ = (fs::path(temp_) / prefix).string();
  download_checkpoint(*store, prefix, path_, only);
}

FetchedCheckpoint::~FetchedCheckpoint() {
  if (temp_.empty()) return;
  std::error_code ignored;
  fs::remove_all(temp_, ignored);
}

int run_cp(const Common& common, const std::string& src,
           const std::string& dst) {
  std::string prefix;
  if (is_s3_url(src) && is_s3_url(dst)) {
    FetchedCheckpoint local(src);
    auto store = store_of(dst, prefix);
    upload_checkpoint(local.path(), *store, prefix);
  } else if (is_s3_url(dst)) {
    auto store = store_of(dst, prefix);
    upload_checkpoint(src, *store, prefix);
  } else if (is_s3_url(src)) {
    auto store = store_of(src, prefix);
    download_checkpoint(*store, prefix, dst);
  } else {
    throw InvalidArgumentError(
        "ckpt cp copies between the local disk and S3: SRC or DST must be "
        "an s3:// URL (for two local folders, `cp -r`)");
  }
  if (common.json) {
    std::cout << nlohmann::json{{"copied", src}, {"to", dst}}.dump() << "\n";
  } else {
    std::printf("copied %s to %s (every byte checked)\n", src.c_str(),
                dst.c_str());
  }
  return 0;
}

int run_ls_remote(const Common& common, const std::string& url) {
  auto store = s3_store(url);
  // Committed steps: folders directly below the root with a commit record.
  std::map<int64_t, std::string> steps;
  std::vector<std::string> others;
  for (const std::string& name : list_remote_checkpoints(*store)) {
    const std::optional<int64_t> step = step_of(name);
    if (step) {
      steps[*step] = name;
    } else {
      others.push_back(name);
    }
  }
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& [step, name] : steps) {
    const RemoteCheckpoint c = open_remote_checkpoint(*store, name);
    int64_t bytes = 0;
    for (const RemoteFile& f : c.files) bytes += f.size;
    rows.push_back({{"step", step},
                    {"name", name},
                    {"files", c.files.size()},
                    {"bytes", bytes}});
  }
  if (common.json) {
    std::cout << nlohmann::json{{"root", url},
                                {"steps", rows},
                                {"other_checkpoints", others}}
                     .dump(2)
              << "\n";
    return 0;
  }
  std::printf("%s: %zu step%s\n", url.c_str(), steps.size(),
              steps.size() == 1 ? "" : "s");
  for (const auto& row : rows) {
    std::printf("  %-12s %6zu files  %s\n",
                row["name"].get<std::string>().c_str(),
                row["files"].get<size_t>(),
                human_bytes(row["bytes"].get<uint64_t>()).c_str());
  }
  for (const std::string& name : others) {
    std::printf("  %-12s (a checkpoint, not a step)\n", name.c_str());
  }
  return 0;
}

}  // namespace ckpt::tool
