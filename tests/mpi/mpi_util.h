// What the multi-process tests share: the world's collectives, options for
// a multi-process Context, and a folder every process sees.
#ifndef CKPT_TESTS_MPI_MPI_UTIL_H_
#define CKPT_TESTS_MPI_MPI_UTIL_H_

#include <ckpt/context.h>
#include <ckpt/mpi.h>
#include <mpi.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

namespace mpi_test {

namespace fs = std::filesystem;

inline std::shared_ptr<ckpt::Collectives> world() {
  static std::shared_ptr<ckpt::Collectives> c =
      ckpt::mpi_collectives(MPI_COMM_WORLD);
  return c;
}

inline int me() { return world()->process_index(); }
inline int count() { return world()->process_count(); }

inline ckpt::ContextOptions mp_options(int primary = 0) {
  ckpt::ContextOptions options;
  options.fsync = false;
  options.multiprocessing.collectives = world();
  options.multiprocessing.primary_host = primary;
  return options;
}

// A fresh folder every process sees, removed by process 0 at the end.
class SharedFolder {
 public:
  explicit SharedFolder(const std::string& tag) {
    std::string name;
    if (me() == 0) {
      name = (fs::temp_directory_path() /
              ("ckpt-mpi-" + tag + "-" + std::to_string(::getpid())))
                 .string();
      fs::remove_all(name);
      fs::create_directories(name);
    }
    path_ = world()->broadcast(name, 0);
  }
  ~SharedFolder() {
    world()->barrier();
    if (me() == 0) fs::remove_all(path_);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

}  // namespace mpi_test

#endif  // CKPT_TESTS_MPI_MPI_UTIL_H_
