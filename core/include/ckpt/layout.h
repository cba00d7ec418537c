// ckpt/layout.h -- a checkpoint on disk: the names of its files, what its
// _CHECKPOINT_METADATA records, and reading that without running any
// handler (what tools need).
//
//   <path>/
//     _CHECKPOINT_METADATA   JSON: item_handlers {name: typestr}, metrics,
//                            timestamps, custom_metadata
//     orbax.checkpoint       empty marker of the v1 layout
//     commit_success.txt
//     <name>/                one folder per checkpointable
#ifndef CKPT_LAYOUT_H_
#define CKPT_LAYOUT_H_

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ckpt {

// Name of the single pytree of save()/load().
inline constexpr const char* kDefaultCheckpointableName = "state";
// load()'s "pick the pytree checkpointable" name.
inline constexpr const char* kAutoName = "AUTO";
// The checkpointable SaveOptions::metrics is saved as.
inline constexpr const char* kMetricsName = "metrics";

// File and folder names.
inline constexpr const char* kCheckpointMetadataFile = "_CHECKPOINT_METADATA";
inline constexpr const char* kMarkerFile = "orbax.checkpoint";
inline constexpr const char* kCommitSuccessFile = "commit_success.txt";
// The file that makes a folder a pytree checkpointable.
inline constexpr const char* kPytreeMetadataFile = "_METADATA";
// Part of the name of a save's temporary folder, which is never a
// checkpoint: <name>.orbax-checkpoint-tmp-<unique>.
inline constexpr const char* kTemporaryInfix = ".orbax-checkpoint-tmp";

enum class LayoutVersion {
  kV1,           // orbax.checkpoint marker
  kV0Composite,  // no marker, one folder per item
  kV0Flat,       // no marker, a pytree (_METADATA) at the root
};

// What _CHECKPOINT_METADATA records, with missing optional fields tolerated.
struct CheckpointInfo {
  std::filesystem::path path;
  LayoutVersion layout = LayoutVersion::kV1;
  // checkpointable name -> typestr of the handler that saved it.
  std::vector<std::pair<std::string, std::string>> item_handlers;
  nlohmann::json metrics = nlohmann::json::object();
  nlohmann::json performance_metrics = nlohmann::json::object();
  nlohmann::json custom_metadata = nlohmann::json::object();
  std::optional<int64_t> init_timestamp_nsecs;
  std::optional<int64_t> commit_timestamp_nsecs;

  // The typestr recorded for `name`, if any.
  std::optional<std::string> typestr_of(const std::string& name) const;
  // The folder of checkpointable `name` (the root itself for a flat v0
  // pytree).
  std::filesystem::path folder_of(const std::string& name) const;
};

// Validates the layout and reads _CHECKPOINT_METADATA (no handler runs).
// NotFoundError when `path` does not exist; InvalidLayoutError naming the
// path when it is no complete checkpoint.
CheckpointInfo read_checkpoint_info(const std::filesystem::path& path);

// The checkpointables of a checkpoint on disk, reserved names excluded,
// sorted by name.
std::vector<std::string> list_checkpointables(const CheckpointInfo& info);
std::vector<std::string> list_checkpointables(
    const std::filesystem::path& path);

}  // namespace ckpt

#endif  // CKPT_LAYOUT_H_
