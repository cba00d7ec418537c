// ckpt/layout.h -- a checkpoint on disk: the names of its files, what its
// _CHECKPOINT_METADATA records, and reading that without running any
// handler (what tools need).
//
//   <path>/
//     _CHECKPOINT_METADATA   JSON: item_handlers {name: typestr}, metrics,
//                            timestamps, custom_metadata
//     orbax.checkpoint       empty marker of the v1 layout
//     commit_success.txt
//     _CHECKSUMS             size and checksum of every file (format 2)
//     <name>/                one folder per checkpointable
#ifndef CKPT_LAYOUT_H_
#define CKPT_LAYOUT_H_

#include <ckpt/export.h>

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
// ckpt's record of every folder and file of a checkpoint, with each file's
// size and XXH3-64 (README: "Integrity").
inline constexpr const char* kChecksumsFile = "_CHECKSUMS";
// The format _CHECKPOINT_METADATA records as "ckpt_format_version": from 2
// on, a checkpoint without a valid _CHECKSUMS is damaged. Orbax's and older
// ckpt checkpoints record none and load without checksums.
inline constexpr int kCheckpointFormatVersion = 2;
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
struct CKPT_API CheckpointInfo {
  std::filesystem::path path;
  LayoutVersion layout = LayoutVersion::kV1;
  // checkpointable name -> typestr of the handler that saved it.
  std::vector<std::pair<std::string, std::string>> item_handlers;
  nlohmann::json metrics = nlohmann::json::object();
  nlohmann::json performance_metrics = nlohmann::json::object();
  nlohmann::json custom_metadata = nlohmann::json::object();
  std::optional<int64_t> init_timestamp_nsecs;
  std::optional<int64_t> commit_timestamp_nsecs;
  // ckpt's format version (kCheckpointFormatVersion when it was written);
  // none for Orbax's and older ckpt checkpoints.
  std::optional<int> format_version;
  // Whether _CHECKSUMS records the checksum of every file (its own checksum
  // and that of the checkpoint's own files checked).
  bool checksums_recorded = false;

  // The typestr recorded for `name`, if any.
  std::optional<std::string> typestr_of(const std::string& name) const;
  // The folder of checkpointable `name` (the root itself for a flat v0
  // pytree).
  std::filesystem::path folder_of(const std::string& name) const;
};

// Validates the layout and reads _CHECKPOINT_METADATA (no handler runs).
// NotFoundError when `path` does not exist; InvalidLayoutError naming the
// path when it is no complete checkpoint.
CKPT_API CheckpointInfo read_checkpoint_info(const std::filesystem::path& path);

// Checks every file of checkpointable `name` against the checksums recorded
// when it was saved (files its handler checks itself: their size). False
// when the checkpoint records no checksums; DataLossError naming the file
// that is missing, added, changed or not a regular file.
CKPT_API bool check_checkpointable_bytes(const std::filesystem::path& path,
                                         const std::string& name);

// The checkpointables of a checkpoint on disk, reserved names excluded,
// sorted by name.
CKPT_API std::vector<std::string> list_checkpointables(
    const CheckpointInfo& info);
CKPT_API std::vector<std::string> list_checkpointables(
    const std::filesystem::path& path);

// Whether the checkpoint has a metrics folder (kMetricsName): metrics that
// are not in _CHECKPOINT_METADATA. Never for a flat v0 pytree, whose
// folder is its one checkpointable.
CKPT_API bool has_metrics_folder(const CheckpointInfo& info);

}  // namespace ckpt

#endif  // CKPT_LAYOUT_H_
