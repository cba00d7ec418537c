// The core's side of a root of step checkpoints (ckpt/checkpointer.h).
#ifndef CKPT_SRC_TRAINING_CHECKPOINT_ROOT_H_
#define CKPT_SRC_TRAINING_CHECKPOINT_ROOT_H_

#include <ckpt/checkpointer.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

namespace ckpt::internal {

// What step folder `folder` of step `step` holds: committed (with its
// commit time and metrics, and its size when `with_size`) or not, and why.
// Never throws for a damaged folder.
StepFolder read_step_folder(const std::filesystem::path& folder, int64_t step,
                            bool with_size = false);

// The folders of a root, by name only: list_checkpoint_root without
// reading a step's files. Each step has its number and path set, nothing
// else; whether it is a whole checkpoint takes read_step_folder.
struct RootFolders {
  StepNameFormat format;
  std::vector<CheckpointStep> steps;  // ascending
  std::vector<TemporaryFolder> temporaries;
};
RootFolders list_root_folders(const std::filesystem::path& root,
                              const std::optional<StepNameFormat>& format);

// Forgets a preemption notice (request_preemption), for tests that run
// several checkpointers in one process.
void forget_preemption_notice();

}  // namespace ckpt::internal

#endif  // CKPT_SRC_TRAINING_CHECKPOINT_ROOT_H_
