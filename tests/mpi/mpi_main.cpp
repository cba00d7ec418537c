// The main of ckpt_mpi_tests, run under mpirun (tools/test.sh: -np 1, 2
// and 4): every process runs the same test cases, whose collectives meet
// across processes. Process 0 reports on stdout; another process's report
// goes to a file and, when one of its test cases failed, to stderr.
#define CATCH_CONFIG_RUNNER
#include <mpi.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  int provided = MPI_THREAD_SINGLE;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (provided < MPI_THREAD_MULTIPLE) {
    if (rank == 0) {
      std::fprintf(stderr,
                   "ckpt_mpi_tests: MPI gives thread level %d, not "
                   "MPI_THREAD_MULTIPLE\n",
                   provided);
    }
    MPI_Finalize();
    return 1;
  }
  Catch::Session session;
  int failed = session.applyCommandLine(argc, argv);
  std::string report;
  if (failed == 0) {
    // The other processes' reports would interleave with process 0's.
    if (rank != 0) {
      const char* tmp = std::getenv("TMPDIR");
      report = std::string(tmp ? tmp : "/tmp") + "/ckpt_mpi_tests." +
               std::to_string(::getpid()) + ".txt";
      session.configData().outputFilename = report;
    }
    failed = session.run();
  }
  if (!report.empty()) {
    if (failed != 0) {
      std::ifstream in(report);
      std::string line;
      while (std::getline(in, line)) {
        std::fprintf(stderr, "process %d: %s\n", rank, line.c_str());
      }
    }
    std::remove(report.c_str());
  }
  int worst = 0;
  MPI_Reduce(&failed, &worst, 1, MPI_INT, MPI_MAX, 0, MPI_COMM_WORLD);
  std::vector<int> each(static_cast<size_t>(size));
  MPI_Gather(&failed, 1, MPI_INT, each.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (rank == 0) {
    for (int p = 1; p < size; ++p) {
      if (each[static_cast<size_t>(p)] != 0) {
        std::printf(
            "ckpt_mpi_tests: process %d of %d failed %d test "
            "case(s) (its report is on stderr)\n",
            p, size, each[static_cast<size_t>(p)]);
      }
    }
  }
  MPI_Finalize();
  return worst == 0 ? 0 : 1;
}
