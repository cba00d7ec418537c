// The core's side of ckpt/layout.h: checkpointable names, temporary folder
// names and the text of _CHECKPOINT_METADATA.
#ifndef CKPT_SRC_LAYOUT_INTERNAL_H_
#define CKPT_SRC_LAYOUT_INTERNAL_H_

#include <ckpt/layout.h>

#include <filesystem>
#include <string>

namespace ckpt::internal {

// InvalidArgumentError unless `name` can be a checkpointable saved by the
// caller: not empty, not reserved (metrics, AUTO), one plain path component
// (no '/', '\0', '.', '..'), not hidden, not a temporary folder name.
void check_checkpointable_name(const std::string& name, bool allow_reserved);

// True when `name` is the name of a temporary save folder.
bool is_temporary_name(const std::string& name);

// `<parent>/<final name>.orbax-checkpoint-tmp-<unique>`.
std::filesystem::path temporary_path_for(
    const std::filesystem::path& final_path);

// The JSON text of _CHECKPOINT_METADATA for `info`.
std::string checkpoint_metadata_json(const CheckpointInfo& info);

// Whether `folder` holds a pytree (_METADATA).
bool is_pytree_folder(const std::filesystem::path& folder);

}  // namespace ckpt::internal

#endif  // CKPT_SRC_LAYOUT_INTERNAL_H_
