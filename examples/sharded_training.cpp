// Many processes, one checkpoint: each MPI process holds some rows of a
// global weight matrix, all of them the same bias, and they save and load
// one checkpoint together, on any number of processes.
//
//   mpirun -np 4 build/examples/sharded_training save DIR
//   mpirun -np 2 build/examples/sharded_training load DIR   # resharded
//
// The checkpointable `params` holds `w`, float32 [2048, 128] with
// w[i][j] = i * 128 + j, split by rows across the processes; `b`, float32
// [128] with b[j] = j, the same on every process (written once); and
// `step`, 7. `load` checks every element of its own rows, `b` and `step`.
#include <ckpt/ckpt.h>
#include <ckpt/mpi.h>
#include <mpi.h>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

namespace {

constexpr int64_t kRows = 2048;
constexpr int64_t kCols = 128;

float expected_w(int64_t i, int64_t j) {
  return static_cast<float>(i * kCols + j);
}

// This process's rows of w, as a shard of the global array.
ckpt::Shard my_rows(const ckpt::Box& box) {
  std::vector<float> rows(static_cast<size_t>(box.shape[0] * kCols));
  for (int64_t i = 0; i < box.shape[0]; ++i) {
    for (int64_t j = 0; j < kCols; ++j) {
      rows[static_cast<size_t>(i * kCols + j)] =
          expected_w(box.offset[0] + i, j);
    }
  }
  return {box.offset, ckpt::Array::from(std::move(rows), box.shape)};
}

void save(const std::string& dir, const ckpt::Box& box) {
  std::vector<float> bias(kCols);
  for (int64_t j = 0; j < kCols; ++j) bias[static_cast<size_t>(j)] = j;
  ckpt::ShardedArray w{ckpt::DType::kFloat32, {kRows, kCols}, {}, nullptr};
  w.shards.push_back(my_rows(box));
  ckpt::SaveOptions options;
  options.overwrite = true;
  ckpt::save_checkpointables(dir,
                             {{"params", ckpt::Value::dict({
                                             {"w", w},
                                             {"b", ckpt::Array::from(bias)},
                                             {"step", 7},
                                         })}},
                             options);
}

// Empty when this process's part of the checkpoint at `dir` is right, else
// the first wrong element.
std::string load(const std::string& dir, const ckpt::Box& box) {
  ckpt::ShardedSpec rows{ckpt::DType::kFloat32, {kRows, kCols}, {box}};
  ckpt::Value abstract = ckpt::Value::dict({
      {"w", rows},
      {"b", ckpt::ArraySpec{ckpt::DType::kFloat32, {kCols}}},
      {"step", ckpt::Value::scalar_spec(ckpt::Value::Kind::kInt)},
  });
  ckpt::Value params =
      ckpt::load_checkpointables(dir, {{"params", abstract}}).at(0).second;
  const ckpt::ShardedArray& w = params.at("w").as_sharded_array();
  if (w.shards.size() != 1 || w.shards[0].box() != box) {
    return "w: not the rows asked for";
  }
  std::vector<float> got = w.shards[0].data.to_vector<float>();
  for (int64_t i = 0; i < box.shape[0]; ++i) {
    for (int64_t j = 0; j < kCols; ++j) {
      const int64_t row = box.offset[0] + i;
      const float v = got[static_cast<size_t>(i * kCols + j)];
      if (v != expected_w(row, j)) {
        return "w[" + std::to_string(row) + "][" + std::to_string(j) +
               "] = " + std::to_string(v) + ", expected " +
               std::to_string(expected_w(row, j));
      }
    }
  }
  std::vector<float> b = params.at("b").as_array().to_vector<float>();
  for (int64_t j = 0; j < kCols; ++j) {
    if (b[static_cast<size_t>(j)] != static_cast<float>(j)) {
      return "b[" + std::to_string(j) +
             "] = " + std::to_string(b[static_cast<size_t>(j)]);
    }
  }
  if (params.at("step").as_int() != 7) {
    return "step = " + std::to_string(params.at("step").as_int());
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const std::string mode = argc == 3 ? argv[1] : "";
  if (mode != "save" && mode != "load") {
    if (rank == 0) {
      std::fprintf(stderr, "usage: %s save|load DIR (under mpirun)\n", argv[0]);
    }
    MPI_Finalize();
    return 2;
  }
  int status = 0;
  try {
    ckpt::ContextOptions options;
    options.multiprocessing.collectives = ckpt::mpi_collectives(MPI_COMM_WORLD);
    ckpt::Context context(options);
    // Rows as even as the count allows: the first 2048 % size processes
    // get one more.
    const ckpt::Box box = ckpt::split_evenly({kRows, kCols}, 0, size)[rank];
    if (mode == "save") {
      save(argv[2], box);
      std::printf("process %d of %d: saved rows %lld..%lld\n", rank, size,
                  static_cast<long long>(box.offset[0]),
                  static_cast<long long>(box.offset[0] + box.shape[0] - 1));
    } else {
      const std::string wrong = load(argv[2], box);
      if (wrong.empty()) {
        std::printf("process %d of %d: ok\n", rank, size);
      } else {
        std::printf("process %d of %d: wrong: %s\n", rank, size, wrong.c_str());
        status = 1;
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "process %d of %d: %s\n", rank, size, e.what());
    status = 1;
  }
  std::fflush(stdout);
  MPI_Finalize();
  return status;
}
