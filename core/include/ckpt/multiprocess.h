// ckpt/multiprocess.h -- many processes, one checkpoint.
//
//   MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
//   ckpt::ContextOptions options;
//   options.multiprocessing.collectives =
//   ckpt::mpi_collectives(MPI_COMM_WORLD); ckpt::Context context(options);  //
//   ckpt/mpi.h, library ckpt-mpi
//
// As Orbax's MultiprocessingOptions: the processes of one job save one
// checkpoint together; the primary host writes the files every process
// shares. Coordination comes from the host's engine, never from ckpt: the
// host hands ckpt a Collectives, and libckpt links no MPI. ckpt-mpi
// (ckpt/mpi.h) implements it over an MPI communicator; a host with another
// engine implements the three operations itself.
#ifndef CKPT_MULTIPROCESS_H_
#define CKPT_MULTIPROCESS_H_

#include <ckpt/export.h>

#include <memory>
#include <string>
#include <vector>

namespace ckpt {

// The collective operations ckpt needs. Every process of the job calls
// each operation, in the same order; a call returns once every process
// made it (or fails on every process). ckpt never calls two operations of
// one Collectives at once; it may call them from a thread other than the
// one that made it (an async save commits on a background thread), unless
// callable_from_any_thread() says no.
//
// A failure throws: ckpt::Error for preference (any other exception
// becomes an InternalError naming the operation).
class CKPT_API Collectives {
 public:
  virtual ~Collectives() = default;

  // This process's index in [0, process_count()), and the number of
  // processes.
  virtual int process_index() const = 0;
  virtual int process_count() const = 0;

  // Returns when every process has called it.
  virtual void barrier() = 0;
  // Every process's `bytes`, indexed by process (sizes may differ).
  virtual std::vector<std::string> all_gather(const std::string& bytes) = 0;
  // The `bytes` of process `root` (others' are ignored), on every process.
  virtual std::string broadcast(const std::string& bytes, int root) = 0;

  // False when the operations may be called only from the thread that
  // made this object (e.g. MPI without MPI_THREAD_SERIALIZED): then
  // multi-process saves must be synchronous.
  virtual bool callable_from_any_thread() const { return true; }
};

struct CKPT_API MultiprocessingOptions {
  // The process that writes the files every process shares
  // (_CHECKPOINT_METADATA, JSON and proto checkpointables, _METADATA) and
  // commits the checkpoint.
  int primary_host = 0;
  // The job's collectives; null: a single process (index 0 of 1).
  std::shared_ptr<Collectives> collectives;

  int process_index() const {
    return collectives ? collectives->process_index() : 0;
  }
  int process_count() const {
    return collectives ? collectives->process_count() : 1;
  }
  bool is_primary_host() const { return process_index() == primary_host; }
};

}  // namespace ckpt

#endif  // CKPT_MULTIPROCESS_H_
