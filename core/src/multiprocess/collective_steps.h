// The steps the processes of a multi-process save take together
// (ckpt/multiprocess.h), over the Context's collectives. Every process
// takes them in this order, whatever failed locally:
//
//  0. exchange_shard_layouts: every process learns every process's sharded
//     arrays (sharding.h), or the first process's error in preparing the
//     save (then it ends there, on every process).
//  1. announce_temporary_folder: the primary host checks the destination
//     and makes the temporary folder; every process learns its path, or
//     the primary's error (then the save ends there, on every process).
//  2. agree_on_outcome, once each process's handlers are done (or it
//     failed): every process learns the first error, by process index.
//  3. announce_commit, only when step 2 found none: the primary commits,
//     and every process learns whether that worked.
#ifndef CKPT_SRC_MULTIPROCESS_COLLECTIVE_STEPS_H_
#define CKPT_SRC_MULTIPROCESS_COLLECTIVE_STEPS_H_

#include <ckpt/multiprocess.h>

#include <exception>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace ckpt::internal {

// Step 0. `mine`: this process's shard_layout, or its error (non-null)
// when it could not prepare the save. Returns every process's layout, by
// process index; throws the error of the lowest-numbered process that
// failed, naming it, on every process.
std::vector<std::string> exchange_shard_layouts(
    Collectives& collectives, const std::filesystem::path& final_path,
    const std::string& mine, std::exception_ptr error);

// Step 1. On the primary host `make` returns the temporary folder of
// `final_path` (or throws). Returns on every process that folder, and the
// primary's final path and checkpointable names, which every process must
// share (one whose differ must still take step 2, with an error). Throws
// the primary's error on every process.
struct StartedSave {
  std::filesystem::path folder;
  std::filesystem::path primary_final_path;
  std::vector<std::string> primary_names;
};
StartedSave announce_temporary_folder(
    Collectives& collectives, int primary_host,
    const std::filesystem::path& final_path,
    const std::vector<std::string>& names,
    const std::function<std::filesystem::path()>& make);

// Step 2. `mine`: this process's error (null: its part is written).
// Returns the error of the lowest-numbered process that failed, naming it
// and keeping its kind; null when every process succeeded.
std::exception_ptr agree_on_outcome(Collectives& collectives,
                                    const std::filesystem::path& final_path,
                                    std::exception_ptr mine);

// Step 3. On the primary host `commit` commits the checkpoint (or throws).
// Returns its error on every process, null when it committed.
std::exception_ptr announce_commit(Collectives& collectives, int primary_host,
                                   const std::filesystem::path& final_path,
                                   const std::function<void()>& commit);

}  // namespace ckpt::internal

#endif  // CKPT_SRC_MULTIPROCESS_COLLECTIVE_STEPS_H_
