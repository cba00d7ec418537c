// A save of many processes (collective_steps.h for the steps they take
// together): the primary host makes the temporary folder, every process
// runs its handlers into it, and the primary commits once every process
// succeeded.
#ifndef CKPT_SRC_MULTIPROCESS_MULTIPROCESS_SAVE_H_
#define CKPT_SRC_MULTIPROCESS_MULTIPROCESS_SAVE_H_

#include <ckpt/checkpoint.h>
#include <ckpt/context.h>
#include <ckpt/multiprocess.h>

#include <filesystem>
#include <memory>

#include "save/save_inputs.h"

namespace ckpt::internal {

// The collectives of a multi-process save (null: one process), once the
// previous multi-process save of this process has its outcome: the
// processes take the steps of one save at a time, in the same order.
std::shared_ptr<Collectives> collectives_for_save(const Context& context,
                                                  bool caller_waits);

// Starts this process's part of a multi-process save. A failure on any
// process before the agreement is taken to the others, so that every
// process leaves with the same outcome.
AsyncSave start_multiprocess_save(const std::filesystem::path& path,
                                  const CheckpointableRefs& checkpointables,
                                  const SaveOptions& options, bool caller_waits,
                                  const Context& context,
                                  std::shared_ptr<Collectives> collectives);

}  // namespace ckpt::internal

#endif  // CKPT_SRC_MULTIPROCESS_MULTIPROCESS_SAVE_H_
