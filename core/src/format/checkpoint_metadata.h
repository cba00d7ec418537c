// _CHECKPOINT_METADATA: what a checkpoint records about itself (the
// handler of each checkpointable, metrics, timestamps, custom metadata),
// written at commit and read back with Orbax's tolerances.
#ifndef CKPT_SRC_FORMAT_CHECKPOINT_METADATA_H_
#define CKPT_SRC_FORMAT_CHECKPOINT_METADATA_H_

#include <ckpt/layout.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ckpt::internal {

// The JSON text of _CHECKPOINT_METADATA for `info`.
std::string checkpoint_metadata_json(const CheckpointInfo& info);

// Folds the fields of _CHECKPOINT_METADATA (`j`, parsed from `text`) into
// `info`, tolerating missing or mistyped optional fields; unknown
// top-level keys fold into custom metadata.
void read_checkpoint_metadata_fields(const nlohmann::json& j,
                                     const std::string& text,
                                     CheckpointInfo& info);

// Whether `folder` holds a pytree (_METADATA).
bool is_pytree_folder(const std::filesystem::path& folder);

// The checkpointable folders in `path` (a checkpoint of `info`'s layout),
// reserved and hidden names excluded, sorted.
std::vector<std::string> list_checkpointables_in(
    const std::filesystem::path& path, const CheckpointInfo& info);

}  // namespace ckpt::internal

#endif  // CKPT_SRC_FORMAT_CHECKPOINT_METADATA_H_
