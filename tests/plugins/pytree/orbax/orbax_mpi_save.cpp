// orbax_mpi_save: a pytree of sharded arrays saved by every process of an
// MPI job into one checkpoint in Orbax's storage, for orbax_interop.py to
// restore with Python Orbax in one process.
//
//   mpirun -np 4 orbax_mpi_save DIR OUT
//
// Each process holds its pieces of the global arrays (row, column and 2-D
// block shardings, a grid whose last cell is cut by the array's edge, a
// piece every process holds, several dtypes) plus replicated arrays and
// scalars; all save DIR with {"pytree": {"storage": "orbax"}}. Process 0
// then writes OUT/spec.json (spec_dump.h's format): the whole tree as
// Orbax should restore it.
#include <ckpt/checkpoint.h>
#include <ckpt/context.h>
#include <ckpt/errors.h>
#include <ckpt/mpi.h>
#include <ckpt/value.h>
#include <mpi.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "spec_dump.h"

namespace {

using ckpt::Array;
using ckpt::Box;
using ckpt::DType;
using ckpt::Shape;
using ckpt::Value;

// A global array whose element i is a function of i (and of `seed`, so
// that two arrays differ), never NaN.
Array global_array(DType dtype, const Shape& shape, int seed) {
  Array a = Array::zeros(dtype, shape);
  auto* out = static_cast<unsigned char*>(a.data());
  const size_t item = a.nbytes() / std::max<int64_t>(1, a.num_elements());
  for (int64_t i = 0; i < a.num_elements(); ++i) {
    const double v = static_cast<double>((i * 37 + seed * 101) % 2003) - 1000;
    unsigned char* at = out + static_cast<size_t>(i) * item;
    switch (dtype) {
      case DType::kFloat32: {
        const float x = static_cast<float>(v) / 8;
        std::memcpy(at, &x, 4);
        break;
      }
      case DType::kFloat64: {
        const double x = v / 3;
        std::memcpy(at, &x, 8);
        break;
      }
      case DType::kInt32: {
        const auto x = static_cast<int32_t>(v * 1000);
        std::memcpy(at, &x, 4);
        break;
      }
      case DType::kUInt8:
        *at = static_cast<unsigned char>(static_cast<int64_t>(v) & 0xff);
        break;
      case DType::kBool:
        *at = (i + seed) % 3 == 0;
        break;
      case DType::kBFloat16: {
        // Not a NaN: a small exponent, either sign.
        const auto bits = static_cast<uint16_t>((i * 7 + seed) % 0x3c00 |
                                                (i % 2 ? 0x8000 : 0));
        std::memcpy(at, &bits, 2);
        break;
      }
      default:
        throw std::logic_error("global_array: add the dtype");
    }
  }
  return a;
}

// The elements of `box` of the C-order array `whole`.
Array cut(const Array& whole, const Box& box) {
  Array piece = Array::zeros(whole.dtype(), box.shape);
  const size_t rank = box.shape.size();
  const size_t item =
      whole.nbytes() / std::max<int64_t>(1, whole.num_elements());
  const Shape& shape = whole.shape();
  std::vector<int64_t> at(rank, 0);
  auto* out = static_cast<unsigned char*>(piece.data());
  const auto* in = static_cast<const unsigned char*>(whole.data());
  for (int64_t n = 0; n < piece.num_elements(); ++n) {
    int64_t linear = 0;
    for (size_t d = 0; d < rank; ++d) {
      linear = linear * shape[d] + box.offset[d] + at[d];
    }
    std::memcpy(out + static_cast<size_t>(n) * item,
                in + static_cast<size_t>(linear) * item, item);
    for (size_t d = rank; d-- > 0;) {
      if (++at[d] < box.shape[d]) break;
      at[d] = 0;
    }
  }
  return piece;
}

// The boxes of a grid over `shape` with cells of `cell` (the last of a
// dimension cut by the edge), in C order of the grid.
std::vector<Box> grid(const Shape& shape, const Shape& cell) {
  std::vector<Box> boxes = {{Shape(shape.size(), 0), Shape(shape.size(), 0)}};
  for (size_t d = 0; d < shape.size(); ++d) {
    std::vector<Box> next;
    for (const Box& b : boxes) {
      for (int64_t o = 0; o < shape[d]; o += cell[d]) {
        Box c = b;
        c.offset[d] = o;
        c.shape[d] = std::min(cell[d], shape[d] - o);
        next.push_back(c);
      }
    }
    boxes = std::move(next);
  }
  return boxes;
}

struct Global {
  Value whole;  // the array, as Orbax restores it
  Value mine;   // this process's pieces, as a ShardedArray
};

// A global array split into `boxes`, box i held by process i % count (or
// every box by every process when `everywhere`).
Global sharded(DType dtype, const Shape& shape, const std::vector<Box>& boxes,
               int seed, int me, int count, bool everywhere = false) {
  Array whole = global_array(dtype, shape, seed);
  ckpt::ShardedArray a{dtype, shape, {}, nullptr};
  for (size_t i = 0; i < boxes.size(); ++i) {
    if (everywhere || static_cast<int>(i % static_cast<size_t>(count)) == me) {
      a.shards.push_back({boxes[i].offset, cut(whole, boxes[i])});
    }
  }
  return {Value(whole), Value(std::move(a))};
}

int run(const std::filesystem::path& dir, const std::filesystem::path& out) {
  int me = 0, count = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  MPI_Comm_size(MPI_COMM_WORLD, &count);
  const std::vector<std::pair<std::string, Global>> arrays = {
      {"rows",
       sharded(DType::kFloat32, {16, 6}, grid({16, 6}, {4, 6}), 1, me, count)},
      {"cols",
       sharded(DType::kInt32, {5, 12}, grid({5, 12}, {5, 3}), 2, me, count)},
      {"blocks",
       sharded(DType::kBFloat16, {8, 8}, grid({8, 8}, {4, 4}), 3, me, count)},
      {"edge", sharded(DType::kFloat64, {10}, grid({10}, {3}), 4, me, count)},
      {"mask", sharded(DType::kBool, {12}, grid({12}, {3}), 5, me, count)},
      {"replicated", sharded(DType::kFloat32, {4, 4}, grid({4, 4}, {4, 4}), 6,
                             me, count, /*everywhere=*/true)},
      // 4 MiB: its chunks go to the data files, not inline.
      {"big", sharded(DType::kFloat32, {1024, 1024},
                      grid({1024, 1024}, {256, 1024}), 7, me, count)},
      {"bytes",
       sharded(DType::kUInt8, {8, 4}, grid({8, 4}, {2, 4}), 8, me, count)}};
  Value::Dict params_mine, params_whole;
  for (const auto& [name, g] : arrays) {
    params_mine.emplace_back(name, g.mine);
    params_whole.emplace_back(name, g.whole);
  }
  const Value plain = Value(global_array(DType::kInt32, {7}, 9));
  auto tree = [&](Value::Dict params) {
    return Value::dict({{"params", Value::dict(std::move(params))},
                        {"plain", plain},
                        {"step", int64_t{42}},
                        {"lr", 0.5},
                        {"flag", true},
                        {"name", std::string("mpi")}});
  };
  ckpt::ContextOptions options;
  options.multiprocessing.collectives = ckpt::mpi_collectives(MPI_COMM_WORLD);
  options.handler_options = {{"pytree", {{"storage", "orbax"}}}};
  {
    ckpt::Context context(options);
    ckpt::save(dir, tree(params_mine));
  }
  if (me == 0) {
    orbax_test::Dumper dumper(out);
    const nlohmann::ordered_json spec = {{"checkpointables",
                                          {{ckpt::kDefaultCheckpointableName,
                                            dumper.spec(tree(params_whole))}}}};
    std::ofstream(out / "spec.json") << spec.dump(1) << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int rc = 2;
  if (argc != 3) {
    std::cerr << "usage: mpirun -np N orbax_mpi_save DIR OUT\n";
  } else {
    try {
      rc = run(argv[1], argv[2]);
    } catch (const std::exception& e) {
      std::cerr << "orbax_mpi_save: " << e.what() << "\n";
      rc = 1;
    }
  }
  MPI_Finalize();
  return rc;
}
