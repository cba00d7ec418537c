#include "load/open_checkpoint.h"

#include <ckpt/errors.h>
#include <ckpt/sdk/files.h>
#include <ckpt/sdk/json.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "save/save_owner.h"
#include "util/error_conversion.h"

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
  const std::string suffix =
      std::string(kTemporaryInfix) + temporary_name_suffix();
  std::string name = final_path.filename().string();
  // A folder name has at most 255 bytes: a long final name is shortened,
  // kept unique by a hash of the whole name.
  constexpr size_t kNameMax = 255;
  if (name.size() + suffix.size() > kNameMax) {
    char hash[18];
    std::snprintf(
        hash, sizeof hash, "~%016llx",
        static_cast<unsigned long long>(xxh3_of(name.data(), name.size())));
    name = name.substr(0, kNameMax - suffix.size() - 17) + hash;
  }
  return final_path.parent_path() / (name + suffix);
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

}  // namespace

CheckpointInfo read_checkpoint_info(const fs::path& path) {
  return internal::open_checkpoint(path).info;
}

bool check_checkpointable_bytes(const fs::path& path, const std::string& name) {
  return internal::with_errors_converted([&] {
    internal::check_checkpointable_name(name, true);
    return internal::open_checkpoint(path).check(name);
  });
}

std::vector<std::string> list_checkpointables(const fs::path& path) {
  return list_checkpointables(read_checkpoint_info(path));
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

namespace {

bool holds_a_file(const fs::path& folder) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    if (entry.symlink_status(ec).type() == fs::file_type::regular) return true;
  }
  return false;
}

// Reads _CHECKSUMS (when there is one) and checks the checkpoint's own
// files against it.
std::optional<ChecksumRecord> read_checksums(const CheckpointDir& dir) {
  constexpr size_t kLimit = size_t{256} << 20;
  std::optional<std::string> text = dir.read_file(kChecksumsFile, kLimit);
  if (!text) return std::nullopt;
  ChecksumRecord record =
      parse_checksums(*text, (dir.path() / kChecksumsFile).string());
  check_against_record(dir, record, "");
  return record;
}

}  // namespace

OpenedCheckpoint open_checkpoint(const fs::path& path) {
  auto invalid = [&](const std::string& why) -> InvalidLayoutError {
    return InvalidLayoutError("invalid checkpoint " + path.string() + ": " +
                              why);
  };
  // "<tmp>/" and "<tmp>/." name the temporary folder too.
  fs::path named = path.lexically_normal();
  if (!named.has_filename()) named = named.parent_path();
  OpenedCheckpoint out;
  out.dir = std::make_unique<CheckpointDir>(path);
  if (is_temporary_name(named.filename().string())) {
    throw invalid(
        "incomplete checkpoint: a temporary folder of a save that never "
        "committed");
  }
  const CheckpointDir& dir = *out.dir;
  CheckpointInfo& info = out.info;
  info.path = path;
  constexpr size_t kMetadataLimit = size_t{64} << 20;
  std::optional<std::string> text;
  with_errors_converted([&] {
    out.checksums = read_checksums(dir);
    struct stat st;
    if (!out.checksums &&
        ::fstatat(dir.fd(), kCheckpointMetadataFile, &st,
                  AT_SYMLINK_NOFOLLOW) == 0 &&
        !S_ISREG(st.st_mode)) {
      throw invalid(std::string(kCheckpointMetadataFile) + " is not a file");
    }
    text = dir.read_file(kCheckpointMetadataFile, kMetadataLimit);
  });
  struct stat st;
  const bool has_marker =
      ::fstatat(dir.fd(), kMarkerFile, &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (!text) {
    // Older Orbax (layout v0) wrote no _CHECKPOINT_METADATA: such a
    // checkpoint is a flat pytree (_METADATA at its root) or folders of
    // checkpointables, with nothing recorded about them. The v1 layout
    // (the marker) and ckpt always write it.
    if (!has_marker && !out.checksums) {
      if (is_pytree_folder(dir.root())) {
        info.layout = LayoutVersion::kV0Flat;
        return out;
      }
      // Empty folders are what a save that never got far leaves behind;
      // a checkpointable that was written holds at least one file. Folders
      // that are checkpoints themselves make this a root of steps.
      bool holds_checkpointables = false;
      bool holds_checkpoints = false;
      for (const std::string& name :
           list_checkpointables_in(dir.root(), info)) {
        std::error_code ec;
        holds_checkpoints |=
            fs::exists(dir.root() / name / kCheckpointMetadataFile, ec);
        holds_checkpointables |= holds_a_file(dir.root() / name);
      }
      if (holds_checkpointables && !holds_checkpoints) {
        info.layout = LayoutVersion::kV0Composite;
        return out;
      }
    }
    throw invalid(std::string("no ") + kCheckpointMetadataFile +
                  " (not a checkpoint, or one whose save never committed)");
  }
  const std::string shown = (path / kCheckpointMetadataFile).string();
  nlohmann::json j;
  with_errors_converted([&] {
    sdk::check_json_depth(*text, shown);
    j = nlohmann::json::parse(*text, nullptr, false);
  });
  if (j.is_discarded() || !j.is_object()) {
    if (out.checksums) {
      throw DataLossError(shown + " is damaged: not a JSON object");
    }
    throw invalid(std::string(kCheckpointMetadataFile) +
                  " is not a JSON object");
  }
  if (has_marker) {
    info.layout = LayoutVersion::kV1;
  } else if (is_pytree_folder(dir.root()) ||
             (j.contains("item_handlers") && j["item_handlers"].is_string())) {
    info.layout = LayoutVersion::kV0Flat;
  } else {
    info.layout = LayoutVersion::kV0Composite;
  }
  read_fields(j, *text, info);
  info.checksums_recorded = out.checksums.has_value();
  if (info.format_version && *info.format_version > kCheckpointFormatVersion) {
    throw invalid("it was written in ckpt format " +
                  std::to_string(*info.format_version) +
                  ", newer than this ckpt reads (up to " +
                  std::to_string(kCheckpointFormatVersion) + ")");
  }
  if (!out.checksums && info.format_version &&
      *info.format_version >= kCheckpointFormatVersion) {
    throw DataLossError(
        "checkpoint " + path.string() + " is damaged: " + kChecksumsFile +
        " is missing (ckpt format " + std::to_string(*info.format_version) +
        " records every file's checksum there)");
  }
  return out;
}

fs::path OpenedCheckpoint::folder_of(const std::string& name) const {
  return info.layout == LayoutVersion::kV0Flat ? dir->root()
                                               : dir->root() / name;
}

std::vector<std::string> OpenedCheckpoint::checkpointables() const {
  return list_checkpointables_in(dir->root(), info);
}

bool OpenedCheckpoint::check(const std::string& name) const {
  if (!checksums) return false;
  check_against_record(*dir, *checksums,
                       info.layout == LayoutVersion::kV0Flat ? "" : name);
  return true;
}

}  // namespace ckpt::internal
