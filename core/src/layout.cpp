#include <ckpt/errors.h>
#include <ckpt/sdk/files.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <sstream>

#include "error_conversion.h"
#include "layout_internal.h"

namespace fs = std::filesystem;

namespace ckpt::internal {

void check_checkpointable_name(const std::string& name, bool allow_reserved) {
  auto fail = [&](const std::string& why) {
    std::string shown;  // a NUL would end the message early
    for (char c : name)
      shown += c == '\0' ? std::string("\\0") : std::string(1, c);
    throw InvalidArgumentError("invalid checkpointable name '" + shown +
                               "': " + why);
  };
  if (name.empty()) fail("names may not be empty");
  if (!allow_reserved && (name == kMetricsName || name == kAutoName)) {
    fail("the name is reserved");
  }
  if (name == "." || name == "..")
    fail("it would escape the checkpoint folder");
  if (name.find('/') != std::string::npos ||
      name.find('\\') != std::string::npos) {
    fail(
        "it would escape the checkpoint folder (names are one path component)");
  }
  if (name.find('\0') != std::string::npos) fail("it contains a NUL byte");
  if (name[0] == '.') fail("hidden names are not allowed");
  if (name == kCheckpointMetadataFile || name == kMarkerFile ||
      name == kCommitSuccessFile || name == kPytreeMetadataFile) {
    fail("it is the name of a checkpoint file");
  }
  if (is_temporary_name(name)) fail("it is the name of a temporary folder");
}

bool is_temporary_name(const std::string& name) {
  return name.find(kTemporaryInfix) != std::string::npos;
}

fs::path temporary_path_for(const fs::path& final_path) {
  static std::atomic<uint64_t> counter{0};
  auto now = std::chrono::system_clock::now().time_since_epoch();
  std::ostringstream unique;
  unique << std::chrono::duration_cast<std::chrono::nanoseconds>(now).count()
         << "-" << ::getpid() << "-" << counter++;
  return final_path.parent_path() / (final_path.filename().string() +
                                     kTemporaryInfix + "-" + unique.str());
}

std::string checkpoint_metadata_json(const CheckpointInfo& info) {
  nlohmann::ordered_json j;
  nlohmann::ordered_json handlers = nlohmann::ordered_json::object();
  for (const auto& [name, typestr] : info.item_handlers)
    handlers[name] = typestr;
  j["item_handlers"] = handlers;
  j["metrics"] = info.metrics;
  j["performance_metrics"] = info.performance_metrics;
  if (info.init_timestamp_nsecs) {
    j["init_timestamp_nsecs"] = *info.init_timestamp_nsecs;
  }
  if (info.commit_timestamp_nsecs) {
    j["commit_timestamp_nsecs"] = *info.commit_timestamp_nsecs;
  }
  j["custom_metadata"] = info.custom_metadata;
  return j.dump();
}

bool is_pytree_folder(const fs::path& folder) {
  std::error_code ec;
  return fs::is_regular_file(folder / kPytreeMetadataFile, ec);
}

}  // namespace ckpt::internal

namespace ckpt {

fs::path CheckpointInfo::folder_of(const std::string& name) const {
  return layout == LayoutVersion::kV0Flat ? path : path / name;
}

std::optional<std::string> CheckpointInfo::typestr_of(
    const std::string& name) const {
  for (const auto& [n, t] : item_handlers) {
    if (n == name) return t;
  }
  return std::nullopt;
}

namespace {

// Folds the fields of _CHECKPOINT_METADATA (`j`, parsed from `text`) into
// `info`, tolerating missing or mistyped optional fields.
void read_fields(const nlohmann::json& j, const std::string& text,
                 CheckpointInfo& info) {
  for (const auto& [key, value] : j.items()) {
    if (key == "item_handlers") {
      if (value.is_object()) {
        // In the order written (nlohmann::json sorts its keys).
        const auto ordered =
            nlohmann::ordered_json::parse(text)["item_handlers"];
        for (auto& [name, typestr] : ordered.items()) {
          if (typestr.is_string()) {
            info.item_handlers.emplace_back(name, typestr.get<std::string>());
          }
        }
      } else if (value.is_string()) {
        info.item_handlers.emplace_back(kDefaultCheckpointableName,
                                        value.get<std::string>());
      }
    } else if (key == "metrics") {
      if (value.is_object()) info.metrics = value;
    } else if (key == "performance_metrics") {
      if (value.is_object()) info.performance_metrics = value;
    } else if (key == "init_timestamp_nsecs") {
      if (value.is_number_integer())
        info.init_timestamp_nsecs = value.get<int64_t>();
    } else if (key == "commit_timestamp_nsecs") {
      if (value.is_number_integer()) {
        info.commit_timestamp_nsecs = value.get<int64_t>();
      }
    } else if (key == "custom_metadata") {
      if (value.is_object()) {
        for (auto& [k, v] : value.items()) info.custom_metadata[k] = v;
      }
    } else {
      // Unknown top-level keys fold into custom metadata.
      info.custom_metadata[key] = value;
    }
  }
}

}  // namespace

CheckpointInfo read_checkpoint_info(const fs::path& path) {
  using namespace internal;
  auto invalid = [&](const std::string& why) -> InvalidLayoutError {
    return InvalidLayoutError("invalid checkpoint " + path.string() + ": " +
                              why);
  };
  std::error_code ec;
  fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) {
    throw NotFoundError("checkpoint " + path.string() + " does not exist");
  }
  if (!fs::is_directory(status)) throw invalid("it is not a folder");
  // "<tmp>/" and "<tmp>/." name the temporary folder too.
  fs::path named = path.lexically_normal();
  if (!named.has_filename()) named = named.parent_path();
  if (is_temporary_name(named.filename().string())) {
    throw invalid(
        "incomplete checkpoint: a temporary folder of a save that never "
        "committed");
  }
  CheckpointInfo info;
  info.path = path;
  const fs::path metadata_file = path / kCheckpointMetadataFile;
  if (!fs::exists(metadata_file, ec)) {
    throw invalid(std::string("no ") + kCheckpointMetadataFile +
                  " (not a checkpoint, or one whose save never committed)");
  }
  if (!fs::is_regular_file(metadata_file, ec)) {
    throw invalid(std::string(kCheckpointMetadataFile) + " is not a file");
  }
  std::string text;
  with_errors_converted(
      [&] { sdk::read_file_if_exists(metadata_file.string(), text); });
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    throw invalid(std::string(kCheckpointMetadataFile) +
                  " is not a JSON object");
  }
  const bool has_marker = fs::exists(path / kMarkerFile, ec);
  if (has_marker) {
    info.layout = LayoutVersion::kV1;
  } else if (is_pytree_folder(path) ||
             (j.contains("item_handlers") && j["item_handlers"].is_string())) {
    info.layout = LayoutVersion::kV0Flat;
  } else {
    info.layout = LayoutVersion::kV0Composite;
  }
  read_fields(j, text, info);
  return info;
}

std::vector<std::string> list_checkpointables(const fs::path& path) {
  return list_checkpointables(read_checkpoint_info(path));
}

std::vector<std::string> list_checkpointables(const CheckpointInfo& info) {
  const fs::path& path = info.path;
  std::vector<std::string> names;
  if (info.layout == LayoutVersion::kV0Flat) {
    names.push_back(kDefaultCheckpointableName);
    return names;
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(path, ec)) {
    if (!entry.is_directory(ec)) continue;
    std::string name = entry.path().filename().string();
    if (name == kMetricsName || name == kAutoName || name[0] == '.' ||
        internal::is_temporary_name(name)) {
      continue;
    }
    names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace ckpt
