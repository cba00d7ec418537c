// The multi-process benchmark: under mpirun, every process saves its rows
// of one float32 global array with ckpt (a sharded array, one checkpoint)
// and, as the limit, write()s the same rows to a file of its own; then
// each loads its rows back (ckpt: a sharded load of its box; raw: read()
// into a fresh buffer). The total data is the same whatever the number of
// processes.
//
//   mpirun -np 4 build/tools/bench/ckpt_mpi_bench --mib 512 --runs 5
//       [--dir /tmp/ckpt-bench]
//
// Each figure is the median over --runs of the time from a barrier before
// the step to a barrier after it (the slowest process), on process 0, which
// prints one JSON line. The raw read is the best of plain, populated and
// huge-page buffers (buffer.h). Both tools run in this one process (the
// same rule for both): every buffer of a step is far above glibc's mmap
// threshold, so each step gets fresh memory. Before each timed step its
// previous output is removed and dirty pages are flushed (untimed). fsync is
// off for both.
#include <ckpt/ckpt.h>
#include <ckpt/mpi.h>
#include <fcntl.h>
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "buffer.h"
#include "timing.h"

namespace fs = std::filesystem;

namespace {

using ckpt_bench::median;

constexpr int64_t kCols = 1024;  // 4 KiB rows of float32

// Seconds from a barrier before `step` to a barrier after it.
double timed(const std::function<void()>& step) {
  MPI_Barrier(MPI_COMM_WORLD);
  const auto start = std::chrono::steady_clock::now();
  step();
  MPI_Barrier(MPI_COMM_WORLD);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

void fail(const std::string& what) {
  std::fprintf(stderr, "ckpt_mpi_bench: %s: %s\n", what.c_str(),
               std::strerror(errno));
  MPI_Abort(MPI_COMM_WORLD, 1);
}

void raw_write(const fs::path& file, const void* data, size_t n) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("open " + file.string());
  for (size_t done = 0; done < n;) {
    ssize_t w = ::write(fd, static_cast<const char*>(data) + done,
                        std::min<size_t>(n - done, size_t{1} << 30));
    if (w <= 0) fail("write " + file.string());
    done += static_cast<size_t>(w);
  }
  ::close(fd);
}

// Reads `n` bytes of `file` into a fresh Buffer of kind `memory`.
void raw_read(const fs::path& file, size_t n, Memory memory) {
  Buffer buffer(n, memory);
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("open " + file.string());
  for (size_t done = 0; done < n;) {
    ssize_t r = ::read(fd, static_cast<char*>(buffer.data()) + done,
                       std::min<size_t>(n - done, size_t{1} << 30));
    if (r <= 0) fail("read " + file.string());
    done += static_cast<size_t>(r);
  }
  ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int64_t mib = 512;
  int runs = 5;
  fs::path dir = "/tmp/ckpt-bench";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--mib") mib = std::atoll(argv[i + 1]);
    if (flag == "--runs") runs = std::atoi(argv[i + 1]);
    if (flag == "--dir") dir = argv[i + 1];
  }
  const int64_t rows = mib * 1024 * 1024 / (kCols * 4);
  const ckpt::Shape global = {rows, kCols};
  const ckpt::Box box = ckpt::split_evenly(global, 0, size)[rank];
  ckpt::Array mine = ckpt::Array::zeros(ckpt::DType::kFloat32, box.shape);
  float* data = mine.data_as<float>();
  for (int64_t i = 0; i < mine.num_elements(); ++i) {
    data[i] = static_cast<float>(box.offset[0] * kCols + i);
  }
  const fs::path work = dir / ("mpi-" + std::to_string(size));
  const fs::path raw_file = work / ("raw." + std::to_string(rank));
  const fs::path checkpoint = work / "ckpt";
  if (rank == 0) {
    fs::remove_all(work);
    fs::create_directories(work);
  }
  std::vector<double> raw_w, raw_r, save_s, load_s;
  {
    ckpt::ContextOptions options;
    options.fsync = false;
    options.multiprocessing.collectives = ckpt::mpi_collectives(MPI_COMM_WORLD);
    ckpt::Context context(options);
    ckpt::ShardedArray w{ckpt::DType::kFloat32, global, {}, nullptr};
    w.shards.push_back({box.offset, mine});
    const ckpt::Value tree = ckpt::Value::dict({{"w", w}});
    const ckpt::Value abstract = ckpt::Value::dict(
        {{"w", ckpt::ShardedSpec{ckpt::DType::kFloat32, global, {box}}}});
    for (int r = 0; r < runs; ++r) {
      // Untimed: the previous outputs go, and their pages are written back.
      MPI_Barrier(MPI_COMM_WORLD);
      if (rank == 0) fs::remove_all(checkpoint);
      fs::remove(raw_file);
      ::sync();
      raw_w.push_back(
          timed([&] { raw_write(raw_file, mine.data(), mine.nbytes()); }));
      ::sync();
      save_s.push_back(timed([&] {
        ckpt::save_checkpointables(checkpoint, {{"params", tree}});
      }));
      ::sync();
      // The limit is the best of the kinds of fresh memory.
      double best = 1e30;
      for (Memory m : {Memory::kPlain, Memory::kPopulated, Memory::kHuge}) {
        best = std::min(best,
                        timed([&] { raw_read(raw_file, mine.nbytes(), m); }));
      }
      raw_r.push_back(best);
      ckpt::Value loaded;
      load_s.push_back(timed([&] {
        loaded = ckpt::load_checkpointables(checkpoint, {{"params", abstract}})
                     .at(0)
                     .second;
      }));
      // Untimed: the rows are the ones saved.
      if (loaded.at("w").as_sharded_array().shards.at(0).data != mine) {
        std::fprintf(stderr, "ckpt_mpi_bench: loaded rows differ\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
      }
    }
  }
  if (rank == 0) {
    fs::remove_all(work);
    nlohmann::json out = {
        {"processes", size},          {"bytes", rows * kCols * 4},
        {"raw_write", median(raw_w)}, {"ckpt_save", median(save_s)},
        {"raw_read", median(raw_r)},  {"ckpt_load", median(load_s)}};
    std::printf("%s\n", out.dump().c_str());
  }
  MPI_Finalize();
  return 0;
}
