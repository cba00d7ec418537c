// Run by tests/mpi_kill_test.cpp under mpirun: saves DIR/ckpt (the old
// checkpoint: "version" 1 and "w", int64 [8] with w[i] = i, split between
// the processes) from every process, then overwrites it while the last
// process kills itself with SIGKILL in the middle of writing its part.
// mpirun then ends the job; the old checkpoint must still be at DIR/ckpt.
// `kill_child DIR again` overwrites DIR/ckpt once more, whole ("version"
// 3), as the next run of a killed job does.
#include <ckpt/checkpoint.h>
#include <ckpt/context.h>
#include <ckpt/mpi.h>
#include <ckpt/stateful.h>
#include <mpi.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

// Writes half its file, then dies, on process `victim`.
class DiesMidWrite final : public ckpt::StatefulCheckpointable {
 public:
  DiesMidWrite(int me, int victim) : me_(me), victim_(victim) {}
  ckpt::BackgroundWork save(const std::filesystem::path& dir) override {
    return [dir, me = me_, victim = victim_] {
      std::ofstream out(dir / ("part." + std::to_string(me)));
      out << std::string(1 << 20, 'x');
      out.flush();
      if (me == victim) ::raise(SIGKILL);
    };
  }
  ckpt::BackgroundWork load(const std::filesystem::path&) override {
    return nullptr;
  }

 private:
  int me_, victim_;
};

// Process `me` of `count`'s rows of w, with w[i] = i + base.
ckpt::ShardedArray w_of(int me, int count, int64_t base) {
  const ckpt::Box rows = ckpt::split_evenly({8}, 0, count)[me];
  std::vector<int64_t> values;
  for (int64_t i = 0; i < rows.shape[0]; ++i) {
    values.push_back(rows.offset[0] + i + base);
  }
  ckpt::ShardedArray w{ckpt::DType::kInt64, {8}, {}, nullptr};
  w.shards.push_back({rows.offset, ckpt::Array::from(std::move(values))});
  return w;
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  const bool again = argc == 3 && std::string(argv[2]) == "again";
  if (argc != 2 && !again) {
    std::fprintf(stderr, "usage: kill_child DIR [again]\n");
    return 2;
  }
  const std::filesystem::path path = std::filesystem::path(argv[1]) / "ckpt";
  {
    ckpt::ContextOptions options;
    options.multiprocessing.collectives = ckpt::mpi_collectives(MPI_COMM_WORLD);
    ckpt::Context context(options);
    const int me = context.process_index();
    const int count = context.process_count();
    ckpt::SaveOptions overwrite;
    overwrite.overwrite = true;
    if (again) {
      ckpt::save(
          path,
          ckpt::Value::dict({{"version", 3}, {"w", w_of(me, count, 200)}}),
          overwrite);
      std::printf("process %d: the second overwrite committed\n", me);
      MPI_Finalize();
      return 0;
    }
    ckpt::save(path,
               ckpt::Value::dict({{"version", 1}, {"w", w_of(me, count, 0)}}));
    options.multiprocessing.collectives->barrier();
    ckpt::save_checkpointables(
        path,
        {{"state",
          ckpt::Value::dict({{"version", 2}, {"w", w_of(me, count, 100)}})},
         {"parts", ckpt::Value::stateful(
                       std::make_shared<DiesMidWrite>(me, count - 1))}},
        overwrite);
    std::printf("process %d: the overwrite committed\n", me);
  }
  MPI_Finalize();
  return 0;
}
