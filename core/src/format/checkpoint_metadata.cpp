#include "format/checkpoint_metadata.h"

#include <algorithm>
#include <system_error>

#include "format/names.h"

namespace fs = std::filesystem;

namespace ckpt::internal {

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
  j["ckpt_format_version"] = kCheckpointFormatVersion;
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

std::vector<std::string> list_checkpointables(const CheckpointInfo& info) {
  return internal::list_checkpointables_in(info.path, info);
}

bool has_metrics_folder(const CheckpointInfo& info) {
  std::error_code ec;
  return info.layout != LayoutVersion::kV0Flat &&
         fs::is_directory(info.path / kMetricsName, ec);
}

}  // namespace ckpt

namespace ckpt::internal {

void read_checkpoint_metadata_fields(const nlohmann::json& j,
                                     const std::string& text,
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
    } else if (key == "ckpt_format_version") {
      // Anything but a small positive integer is a format this ckpt does
      // not know.
      info.format_version =
          value.is_number_unsigned() && value.get<uint64_t>() < 1000
              ? static_cast<int>(value.get<uint64_t>())
              : 1000;
    } else {
      // Unknown top-level keys fold into custom metadata.
      info.custom_metadata[key] = value;
    }
  }
}

std::vector<std::string> list_checkpointables_in(const fs::path& path,
                                                 const CheckpointInfo& info) {
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

}  // namespace ckpt::internal
