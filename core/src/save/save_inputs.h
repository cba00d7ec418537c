// The input checks of a save: the checkpointables a caller passed, checked
// and named, the metrics appended, and whether the destination is free.
#ifndef CKPT_SRC_SAVE_SAVE_INPUTS_H_
#define CKPT_SRC_SAVE_SAVE_INPUTS_H_

#include <ckpt/checkpoint.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace ckpt::internal {

// The absolute, normal form of a checkpoint path (no trailing slash);
// InvalidArgumentError when it is empty.
std::filesystem::path normalized(const std::filesystem::path& path);

// The checkpointables of a save, by name. A value is the caller's own, not
// copied (the C views plugins get are self-contained, and every handler
// takes what it needs in its blocking tier), unless the save must change it
// (the placement of its sharded arrays) or made it (the metrics): then it
// is a copy the save owns, in `owned`.
struct SaveItems {
  std::vector<std::string> names;
  std::vector<const Value*> values;  // per name; may point into `owned`
  Checkpointables owned;             // reserved up front: never moves
  size_t size() const { return names.size(); }
};

// The checkpointables a caller passed, by name and value (not copied).
using CheckpointableRefs = std::vector<std::pair<std::string, const Value*>>;

CheckpointableRefs refs_of(const Checkpointables& checkpointables);

// The checkpointables to save, checked, with the metrics appended. The
// caller's values are referred to: they must outlive the blocking tiers.
SaveItems items_to_save(const std::filesystem::path& path,
                        const CheckpointableRefs& checkpointables,
                        const SaveOptions& options);

// AlreadyExistsError unless the final path is free or may be overwritten.
void check_destination(const std::filesystem::path& final_path, bool overwrite);

}  // namespace ckpt::internal

#endif  // CKPT_SRC_SAVE_SAVE_INPUTS_H_
