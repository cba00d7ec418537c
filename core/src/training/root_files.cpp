// The files of a root beside its steps (training/root_files.h).
#include "training/root_files.h"

#include <ckpt/checkpointer.h>
#include <ckpt/errors.h>
#include <ckpt/sdk/files.h>
#include <ckpt/sdk/json.h>

#include "format/names.h"
#include "save/atomic_commit.h"
#include "util/error_conversion.h"

namespace fs = std::filesystem;

namespace ckpt {

namespace {

// Orbax's root metadata: <root>/metadata/_ROOT_METADATA, a JSON object
// whose "custom_metadata" is the root's custom metadata. Orbax fails to
// read a root whose metadata/ folder lacks that file, so ckpt's record of
// the policy is a file of the root itself: hidden, so that no step prefix
// (never hidden) matches it, and no folder, so that nothing takes it for a
// step.
constexpr const char* kRootMetadataFolder = "metadata";
constexpr const char* kRootMetadataFile = "_ROOT_METADATA";
constexpr const char* kPolicyRecordFile = ".ckpt_preservation_policy.json";
// These are small documents; a larger file is not one.
constexpr uintmax_t kMaxRootFileBytes = 16u << 20;

// A root file's JSON object; nullopt when the file does not exist.
std::optional<nlohmann::json> read_root_file(const fs::path& path,
                                             const char* what) {
  std::string text;
  const bool found = internal::with_errors_converted([&] {
    std::error_code ec;
    const uintmax_t size = fs::file_size(path, ec);
    if (!ec && size > kMaxRootFileBytes) {
      throw DataLossError(path.string() + " holds " + std::to_string(size) +
                          " bytes, more than " + what + " may (" +
                          std::to_string(kMaxRootFileBytes) + ")");
    }
    return sdk::read_file_if_exists(path.string(), text);
  });
  if (!found) return std::nullopt;
  nlohmann::json j = internal::with_errors_converted(
      [&] { return sdk::parse_json_from_disk(text, path.string()); });
  if (!j.is_object()) {
    throw DataLossError(path.string() + ": not a JSON object");
  }
  return j;
}

// Writes `document` to `path` through a temporary file renamed into place
// (no half-written file).
void write_root_file(const fs::path& path, const nlohmann::json& document) {
  internal::with_errors_converted([&] {
    fs::create_directories(path.parent_path());
    const fs::path temporary = internal::temporary_path_for(path);
    internal::write_file(temporary, document.dump(), 0644);
    fs::rename(temporary, path);
    internal::fsync_directory(path.parent_path());
  });
}

}  // namespace

namespace internal {

void write_root_metadata(const fs::path& root, const nlohmann::json& custom) {
  const fs::path path = root / kRootMetadataFolder / kRootMetadataFile;
  std::error_code ec;
  if (fs::symlink_status(path, ec).type() != fs::file_type::not_found) return;
  write_root_file(path, nlohmann::json{{"custom_metadata", custom}});
}

nlohmann::json read_root_metadata(const fs::path& root) {
  const fs::path path = root / kRootMetadataFolder / kRootMetadataFile;
  nlohmann::json out = nlohmann::json::object();
  const std::optional<nlohmann::json> j =
      read_root_file(path, "a root's metadata");
  if (!j) return out;
  // As Orbax reads it: "custom_metadata" (an object or null), and any other
  // key but Orbax's internal ones joins it.
  for (const auto& [key, value] : j->items()) {
    if (key == "custom_metadata") {
      if (!value.is_object() && !value.is_null()) {
        throw DataLossError(path.string() +
                            ": custom_metadata is not a JSON object");
      }
      if (value.is_object()) out.update(value);
    } else if (key != "internal_metadata") {
      out[key] = value;
    }
  }
  return out;
}

void write_policy_record(const fs::path& root, const nlohmann::json& policy) {
  const nlohmann::json record = {{"preservation_policy", policy}};
  try {
    if (recorded_preservation_policy(root) == std::optional(policy)) return;
  } catch (const Error&) {
    // a damaged record is replaced
  }
  write_root_file(root / kPolicyRecordFile, record);
}

}  // namespace internal

std::optional<nlohmann::json> recorded_preservation_policy(
    const fs::path& root) {
  const fs::path path = root / kPolicyRecordFile;
  const std::optional<nlohmann::json> j =
      read_root_file(path, "a policy record");
  if (!j) return std::nullopt;
  const auto it = j->find("preservation_policy");
  if (it == j->end() || !(it->is_object() || it->is_null())) {
    throw DataLossError(path.string() +
                        ": preservation_policy is not a JSON object or null");
  }
  return *it;
}

}  // namespace ckpt
