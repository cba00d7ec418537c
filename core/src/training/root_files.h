// The files a Checkpointer keeps at its root beside the steps: Orbax's
// metadata/_ROOT_METADATA (the root's custom metadata) and ckpt's record
// of the preservation policy, for `ckpt ls`.
#ifndef CKPT_SRC_TRAINING_ROOT_FILES_H_
#define CKPT_SRC_TRAINING_ROOT_FILES_H_

#include <filesystem>
#include <nlohmann/json.hpp>

namespace ckpt::internal {

// Writes the root's custom metadata unless the root has some already (a
// root keeps what its first run wrote).
void write_root_metadata(const std::filesystem::path& root,
                         const nlohmann::json& custom);
// The root's custom metadata as Orbax reads it; an empty object when it
// has none. DataLossError naming the file when it is damaged.
nlohmann::json read_root_metadata(const std::filesystem::path& root);

// Records `policy` (PreservationPolicy::to_json, null for one JSON cannot
// describe) unless the record already says so.
void write_policy_record(const std::filesystem::path& root,
                         const nlohmann::json& policy);

}  // namespace ckpt::internal

#endif  // CKPT_SRC_TRAINING_ROOT_FILES_H_
