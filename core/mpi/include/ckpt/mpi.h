// ckpt/mpi.h -- ckpt's collectives over an MPI communicator (library
// ckpt-mpi, pkg-config ckpt-mpi; built when Open MPI is found).
//
//   int provided;
//   MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
//   ckpt::ContextOptions options;
//   options.multiprocessing.collectives =
//   ckpt::mpi_collectives(MPI_COMM_WORLD); ckpt::Context context(options);
//   ckpt::save(path, tree);  // every process of MPI_COMM_WORLD calls it
//
// The collectives work on a duplicate of `comm` (MPI_Comm_dup), so that
// ckpt's messages never match the host's. Call mpi_collectives on every
// process of `comm` (it is collective), after MPI_Init and before
// MPI_Finalize; destroy every Context holding it before MPI_Finalize.
//
// Threads: an async save commits on a background thread, which needs MPI
// initialized with MPI_THREAD_MULTIPLE (or MPI_THREAD_SERIALIZED when the
// host makes no MPI call while a save is in flight). With less, the
// collectives say callable_from_any_thread() == false and multi-process
// saves must be synchronous.
#ifndef CKPT_MPI_H_
#define CKPT_MPI_H_

#include <ckpt/export.h>
#include <ckpt/multiprocess.h>
#include <mpi.h>

#include <memory>

namespace ckpt {

// Throws ckpt::InvalidArgumentError when MPI is not initialized or is
// finalized, ckpt::InternalError when duplicating `comm` fails.
CKPT_API std::shared_ptr<Collectives> mpi_collectives(MPI_Comm comm);

}  // namespace ckpt

#endif  // CKPT_MPI_H_
