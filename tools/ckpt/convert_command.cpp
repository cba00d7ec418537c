// `ckpt convert [--to orbax] SRC DST`: any checkpoint ckpt can read
// (Python Orbax's included) written again as a ckpt checkpoint; with
// --to orbax its pytrees go into Python Orbax's own storage. Each
// checkpointable a loaded plugin can load is loaded and saved by the handler
// ckpt resolves for its value (a pytree into _METADATA + arrays.h5, which h5py
// reads); one only the host app can load, or that no loaded plugin claims, is
// copied byte for byte and keeps its recorded handler. The custom metadata
// and metrics come along. DST must not exist.
#include <ckpt/checkpoint.h>
#include <ckpt/context.h>
#include <ckpt/errors.h>
#include <ckpt/handler.h>
#include <ckpt/layout.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "host_types.h"

namespace ckpt::tool {

namespace fs = std::filesystem;

namespace {

// Folders nested deeper than this in a copied checkpointable are refused
// (a damaged or hostile tree must not exhaust the stack).
constexpr int kMaxCopyDepth = 128;

// Copies the folder `from` into the existing empty folder `to`: folders and
// regular files only (a checkpoint holds nothing else; a symbolic link
// could lead outside it).
void copy_folder(const fs::path& from, const fs::path& to, int depth = 0) {
  if (depth > kMaxCopyDepth) {
    throw DataLossError(from.string() + " lies more than " +
                        std::to_string(kMaxCopyDepth) +
                        " folders deep: not copied");
  }
  for (const auto& entry : fs::directory_iterator(from)) {
    const fs::file_status st = entry.symlink_status();
    const fs::path target = to / entry.path().filename();
    if (fs::is_directory(st)) {
      fs::create_directory(target);
      copy_folder(entry.path(), target, depth + 1);
    } else if (fs::is_regular_file(st)) {
      fs::copy_file(entry.path(), target);
    } else {
      throw DataLossError(entry.path().string() +
                          " is neither a folder nor a regular file: not "
                          "copied");
    }
  }
}

// Saves a checkpointable as the copy of its folder in the source
// checkpoint (its value: that folder's path), under the handler recorded
// for it there.
class FolderCopyHandler final : public Handler {
 public:
  explicit FolderCopyHandler(const std::string& typestr) {
    info_.typestr = typestr;
    info_.description = "a checkpointable copied byte for byte";
    info_.origin = "host";
    info_.load_needs_abstract = true;
  }
  const HandlerInfo& info() const override { return info_; }
  bool is_handleable(const Value& value) const override {
    return value.kind() == Value::Kind::kString;
  }
  Answer is_abstract_handleable(const Value&) const override {
    return Answer::kNo;
  }
  std::future<void> save(const CallContext& call,
                         const Value& value) const override {
    const fs::path source = value.as_string();
    const fs::path target = call.directory;
    if (!fs::is_directory(fs::symlink_status(source))) {
      throw DataLossError(source.string() +
                          " is not a folder (a symbolic link is not "
                          "followed): not copied");
    }
    return run_in_background([source, target] {
      try {
        copy_folder(source, target);
      } catch (const fs::filesystem_error& e) {
        throw IOError("cannot copy " + source.string() + " to " +
                      target.string() + ": " + e.code().message());
      }
    });
  }
  std::future<Value> load(const CallContext& call,
                          const Value*) const override {
    throw UnimplementedError("checkpointable '" + call.checkpointable_name +
                             "' was copied by ckpt convert: only its own "
                             "handler (" +
                             info_.typestr + ") loads it");
  }

 private:
  HandlerInfo info_;
};

}  // namespace

int run_convert(const Common& common, const std::string& src,
                const std::string& dst, const std::string& to) {
  const CheckpointInfo info = read_checkpoint_info(src);
  if (fs::exists(fs::symlink_status(dst))) {
    throw AlreadyExistsError("ckpt convert: " + dst +
                             " already exists (convert writes a new "
                             "checkpoint)");
  }
  Checkpointables values;
  std::vector<std::pair<std::string, HandlerPtr>> copies;
  nlohmann::ordered_json report = nlohmann::ordered_json::array();
  for (const std::string& name : list_checkpointables(info)) {
    const std::optional<std::string> typestr = info.typestr_of(name);
    const bool host_only =
        unclaimed_typestr(info, name) || !needs_host_type(info, name).empty();
    if (host_only && typestr) {
      // Checked against the source's checksums before it is copied.
      check_checkpointable_bytes(src, name);
      copies.emplace_back(name, std::make_shared<FolderCopyHandler>(*typestr));
      values.emplace_back(name, Value(info.folder_of(name).string()));
      report.push_back({{"name", name},
                        {"action", "copied byte for byte"},
                        {"handler", *typestr}});
      continue;
    }
    values.emplace_back(name,
                        load_checkpointables(src, {{name, Value()}})[0].second);
    report.push_back({{"name", name}, {"action", "converted"}});
  }
  if (values.empty()) {
    throw InvalidLayoutError("ckpt convert: " + src +
                             " holds no checkpointable to convert");
  }
  SaveOptions options;
  if (info.custom_metadata.is_object()) {
    options.custom_metadata = info.custom_metadata;
  }
  if (info.metrics.is_object() && !info.metrics.empty()) {
    options.metrics = info.metrics;
  } else if (has_metrics_folder(info)) {
    const Value metrics =
        load_checkpointables(src, {{kMetricsName, Value()}})[0].second;
    if (metrics.kind() == Value::Kind::kJson)
      options.metrics = metrics.as_json();
  }
  ContextOptions context_options;
  context_options.checkpointables_options =
      CheckpointablesOptions::create_with_handlers(copies);
  if (to == "orbax") {
    context_options.handler_options = {{"pytree", {{"storage", "orbax"}}}};
  }
  Context context(context_options);
  save_checkpointables(dst, values, options);
  // What each became, now that it is saved.
  const CheckpointInfo written = read_checkpoint_info(dst);
  for (auto& entry : report) {
    const std::string name = entry["name"];
    if (!entry.contains("handler")) {
      entry["handler"] = written.typestr_of(name).value_or("");
    }
  }
  if (common.json) {
    std::cout << nlohmann::ordered_json{{"source", src},
                                        {"checkpoint", dst},
                                        {"checkpointables", report}}
                     .dump(2)
              << "\n";
    return 0;
  }
  for (const auto& entry : report) {
    std::printf("%s: %s (%s)\n", entry["name"].get<std::string>().c_str(),
                entry["action"].get<std::string>().c_str(),
                entry["handler"].get<std::string>().c_str());
  }
  std::printf("%s: written from %s\n", dst.c_str(), src.c_str());
  return 0;
}

}  // namespace ckpt::tool
