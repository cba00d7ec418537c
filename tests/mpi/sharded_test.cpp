// Sharded arrays over MPI: each process saves its pieces of global arrays
// into one checkpoint, and any number of processes loads it back in any
// sharding (P writers, Q readers). Writers with fewer processes than the
// world are made with MPI_Comm_split; readers need no collectives, so a
// process can stand for any reader of a Q-way split.
#include <ckpt/checkpoint.h>
#include <ckpt/context.h>
#include <ckpt/errors.h>
#include <ckpt/mpi.h>
#include <ckpt/value.h>
#include <mpi.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "mpi_util.h"
#include "test_util.h"

using namespace mpi_test;

namespace {

using ckpt::Box;
using ckpt::DType;

// The element at flat index `i` of the test arrays, as bytes of `dtype`:
// distinct for every index (modulo the dtype's range), never NaN.
void element(DType dtype, int64_t i, void* out) {
  const double v = static_cast<double>(i % 100003) - 50000;
  switch (dtype) {
#define CASE(D, T)                  \
  case DType::D: {                  \
    T x = static_cast<T>(v);        \
    std::memcpy(out, &x, sizeof x); \
    break;                          \
  }
    CASE(kInt8, int8_t)
    CASE(kInt16, int16_t)
    CASE(kInt32, int32_t)
    CASE(kInt64, int64_t)
    CASE(kUInt8, uint8_t)
    CASE(kUInt16, uint16_t)
    CASE(kUInt32, uint32_t)
    CASE(kUInt64, uint64_t)
    CASE(kFloat32, float)
    CASE(kFloat64, double)
#undef CASE
    case DType::kBool: {
      bool b = i % 3 == 0;
      std::memcpy(out, &b, 1);
      break;
    }
    case DType::kFloat16:
    case DType::kBFloat16: {
      // Any 16-bit pattern that is not a NaN: sign and a small exponent.
      uint16_t bits = static_cast<uint16_t>((i * 7) % 0x3c00);
      std::memcpy(out, &bits, 2);
      break;
    }
    case DType::kComplex64: {
      float c[2] = {static_cast<float>(v), static_cast<float>(-v)};
      std::memcpy(out, c, sizeof c);
      break;
    }
    case DType::kComplex128: {
      double c[2] = {v, v / 2};
      std::memcpy(out, c, sizeof c);
      break;
    }
  }
}

int64_t volume(const ckpt::Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// The elements of `box` of the global array of `global` shape whose
// element at flat index i is element(dtype, i).
ckpt::Array box_of(DType dtype, const ckpt::Shape& global, const Box& box) {
  ckpt::Array a = ckpt::Array::zeros(dtype, box.shape);
  const size_t item = ckpt::dtype_size(dtype);
  std::vector<int64_t> at(box.shape.size(), 0);
  for (int64_t k = 0; k < volume(box.shape); ++k) {
    int64_t rest = k, flat = 0;
    for (size_t d = box.shape.size(); d-- > 0;) {
      at[d] = rest % box.shape[d];
      rest /= box.shape[d];
    }
    for (size_t d = 0; d < global.size(); ++d) {
      flat = flat * global[d] + box.offset[d] + at[d];
    }
    element(dtype, flat, static_cast<char*>(a.data()) + k * item);
  }
  return a;
}

ckpt::Array whole(DType dtype, const ckpt::Shape& global) {
  return box_of(dtype, global, Box{ckpt::Shape(global.size(), 0), global});
}

// This process's shards of an array split into the boxes `boxes`, the
// boxes taken round robin over `processes` processes.
ckpt::ShardedArray sharded(DType dtype, const ckpt::Shape& global,
                           const std::vector<Box>& boxes, int process,
                           int processes) {
  ckpt::ShardedArray a{dtype, global, {}, nullptr};
  for (size_t i = 0; i < boxes.size(); ++i) {
    if (static_cast<int>(i) % processes == process) {
      a.shards.push_back({boxes[i].offset, box_of(dtype, global, boxes[i])});
    }
  }
  return a;
}

// The blocks of a rows x cols grid of `global` (2-d).
std::vector<Box> grid(const ckpt::Shape& global, int rows, int cols) {
  std::vector<Box> out;
  for (const Box& r : ckpt::split_evenly(global, 0, rows)) {
    for (const Box& c : ckpt::split_evenly(r.shape, 1, cols)) {
      out.push_back({{r.offset[0], c.offset[1]}, {r.shape[0], c.shape[1]}});
    }
  }
  return out;
}

// Saves `tree` as checkpointable "params" from the first `writers`
// processes of the world (the others wait).
void save_from(int writers, const fs::path& path,
               const std::function<ckpt::Value(int, int)>& tree) {
  MPI_Comm comm;
  MPI_Comm_split(MPI_COMM_WORLD, me() < writers ? 0 : MPI_UNDEFINED, me(),
                 &comm);
  if (comm != MPI_COMM_NULL) {
    {
      ckpt::ContextOptions options;
      options.fsync = false;
      options.multiprocessing.collectives = ckpt::mpi_collectives(comm);
      ckpt::Context context(options);
      ckpt::save_checkpointables(path, {{"params", tree(me(), writers)}});
    }
    MPI_Comm_free(&comm);
  }
  world()->barrier();
}

ckpt::Value load_params(const fs::path& path, const ckpt::Value& abstract) {
  return ckpt::load_checkpointables(path, {{"params", abstract}}).at(0).second;
}

}  // namespace

TEST_CASE("sharded arrays of every dtype round-trip, as saved and by box",
          "[mpi][sharded]") {
  SharedFolder dir("dtypes");
  const fs::path path = dir.path() / "ckpt";
  const ckpt::Shape global = {static_cast<int64_t>(3 * count() + 1), 5};
  const std::vector<Box> rows = ckpt::split_evenly(global, 0, count());
  {
    ckpt::Context context(mp_options());
    ckpt::Value::Dict tree;
    for (DType dtype : ckpt::test::all_dtypes()) {
      tree.emplace_back(std::string(ckpt::dtype_name(dtype)),
                        sharded(dtype, global, rows, me(), count()));
    }
    ckpt::save_checkpointables(path, {{"params", ckpt::Value::dict(tree)}});
  }
  // Every process wrote its own rows once.
  for (int p = 0; p < count(); ++p) {
    CHECK(fs::exists(path / "params" /
                     ("arrays.process_" + std::to_string(p) + ".h5")));
  }
  // As saved: the global arrays.
  const ckpt::Value loaded = ckpt::load(path, nullptr, "params");
  for (DType dtype : ckpt::test::all_dtypes()) {
    INFO(ckpt::dtype_name(dtype));
    CHECK(loaded.at(ckpt::dtype_name(dtype)).as_array() ==
          whole(dtype, global));
  }
  // By box: this process's rows.
  ckpt::Value::Dict abstract;
  for (DType dtype : ckpt::test::all_dtypes()) {
    abstract.emplace_back(std::string(ckpt::dtype_name(dtype)),
                          ckpt::ShardedSpec{dtype, global, {rows[me()]}});
  }
  const ckpt::Value mine =
      load_params(path, ckpt::Value::dict(std::move(abstract)));
  for (DType dtype : ckpt::test::all_dtypes()) {
    INFO(ckpt::dtype_name(dtype));
    const ckpt::ShardedArray& a =
        mine.at(ckpt::dtype_name(dtype)).as_sharded_array();
    REQUIRE(a.shards.size() == 1);
    CHECK(a.shards[0].box() == rows[me()]);
    CHECK(a.shards[0].data == box_of(dtype, global, rows[me()]));
  }
  // Metadata: the global shape and the stored boxes, without the data.
  const ckpt::Value metadata = ckpt::metadata(path, "params").metadata;
  const auto& spec = metadata.at("float32").as_sharded_spec();
  CHECK(spec.dtype == DType::kFloat32);
  CHECK(spec.global_shape == global);
  CHECK(spec.boxes == rows);
}

TEST_CASE("resharding: P writers, Q readers, for P and Q in {1, 2, 4}",
          "[mpi][sharded]") {
  const ckpt::Shape global = {37, 6};
  for (int writers : {1, 2, 4}) {
    if (writers > count()) continue;
    SharedFolder dir("reshard-" + std::to_string(writers));
    const fs::path path = dir.path() / "ckpt";
    // Rows from P writers, and a 2-d block grid for a second array.
    save_from(writers, path, [&](int p, int n) {
      return ckpt::Value::dict({
          {"rows", sharded(DType::kFloat32, global,
                           ckpt::split_evenly(global, 0, n), p, n)},
          {"blocks", sharded(DType::kInt64, global, grid(global, n, 2), p, n)},
      });
    });
    for (int readers : {1, 2, 4}) {
      INFO(writers << " writers, " << readers << " readers");
      // Every reader of the Q-way split that this process stands for.
      for (int r = me(); r < readers; r += count()) {
        const Box rows = ckpt::split_evenly(global, 0, readers)[r];
        const Box cols = ckpt::split_evenly(global, 1, readers)[r];
        const ckpt::Value loaded = load_params(
            path,
            ckpt::Value::dict({
                {"rows", ckpt::ShardedSpec{DType::kFloat32, global, {rows}}},
                // Columns of the block grid, cast to float64.
                {"blocks", ckpt::ShardedSpec{DType::kFloat64, global, {cols}}},
            }));
        const auto& a = loaded.at("rows").as_sharded_array();
        REQUIRE(a.shards.size() == 1);
        CHECK(a.shards[0].data == box_of(DType::kFloat32, global, rows));
        const auto& b = loaded.at("blocks").as_sharded_array();
        REQUIRE(b.shards.size() == 1);
        CHECK(b.dtype == DType::kFloat64);
        const auto want =
            box_of(DType::kInt64, global, cols).to_vector<int64_t>();
        const auto got = b.shards[0].data.to_vector<double>();
        REQUIRE(got.size() == want.size());
        for (size_t i = 0; i < got.size(); ++i) {
          CHECK(got[i] == static_cast<double>(want[i]));
        }
      }
    }
  }
}

TEST_CASE("a replicated piece is written once, by the lowest process",
          "[mpi][sharded]") {
  SharedFolder dir("replicated");
  const fs::path path = dir.path() / "ckpt";
  const ckpt::Shape global = {8, 4};
  const std::vector<Box> halves = ckpt::split_evenly(global, 0, 2);
  {
    ckpt::Context context(mp_options());
    // Every process holds the whole array; and half of a second one, the
    // processes in pairs (0 and 1 the first half, 2 and 3 the second).
    ckpt::ShardedArray everywhere{DType::kFloat32, global, {}, nullptr};
    everywhere.shards.push_back(
        {{0, 0}, box_of(DType::kFloat32, global, {{0, 0}, global})});
    // With 4 processes, 0 and 1 hold the first half, 2 and 3 the second;
    // with 2, one half each.
    const Box& half =
        halves[static_cast<size_t>(count() >= 4 ? me() / 2 % 2 : me() % 2)];
    ckpt::ShardedArray pairs{DType::kFloat32, global, {}, nullptr};
    pairs.shards.push_back(
        {half.offset, box_of(DType::kFloat32, global, half)});
    if (count() == 1) {  // one process holds both halves
      pairs.shards.push_back(
          {halves[1].offset, box_of(DType::kFloat32, global, halves[1])});
    }
    ckpt::save_checkpointables(
        path, {{"params", ckpt::Value::dict({{"everywhere", everywhere},
                                             {"pairs", pairs}})}});
  }
  const std::vector<std::string> files =
      ckpt::test::folder_entries(path / "params");
  std::vector<std::string> writers;
  for (const std::string& f : files) {
    if (f.rfind("arrays.process_", 0) == 0) writers.push_back(f);
  }
  // Process 0 writes "everywhere" and the first half; the lowest holder of
  // the second half writes it.
  const std::vector<std::string> expected =
      count() >= 4   ? std::vector<std::string>{"arrays.process_0.h5",
                                                "arrays.process_2.h5"}
      : count() == 2 ? std::vector<std::string>{"arrays.process_0.h5",
                                                "arrays.process_1.h5"}
                     : std::vector<std::string>{"arrays.process_0.h5"};
  CHECK(writers == expected);
  const ckpt::Value loaded = ckpt::load(path, nullptr, "params");
  CHECK(loaded.at("everywhere").as_array() == whole(DType::kFloat32, global));
  CHECK(loaded.at("pairs").as_array() == whole(DType::kFloat32, global));
}

TEST_CASE("h5py reads the global arrays of a sharded checkpoint",
          "[mpi][sharded]") {
  SharedFolder dir("h5py");
  const fs::path path = dir.path() / "ckpt";
  const ckpt::Shape global = {4 * count() + 3, 6};
  {
    ckpt::Context context(mp_options());
    ckpt::save_checkpointables(
        path,
        {{"params",
          ckpt::Value::dict({
              {"rows",
               sharded(DType::kFloat32, global,
                       ckpt::split_evenly(global, 0, count()), me(), count())},
              {"blocks", sharded(DType::kInt32, global,
                                 grid(global, count(), 3), me(), count())},
          })}});
  }
  if (me() == 0) {
    // Element i of both is element(dtype, i): i % 100003 - 50000.
    const std::string script =
        "import h5py, numpy as np\n"
        "f = h5py.File('" +
        (path / "params" / "arrays.h5").string() +
        "')\n"
        "n = " +
        std::to_string(volume(global)) +
        "\n"
        "want = (np.arange(n) % 100003 - 50000).reshape(" +
        std::to_string(global[0]) +
        ", 6)\n"
        "assert f['rows'].is_virtual and f['blocks'].is_virtual\n"
        "assert (f['rows'][()] == want.astype(np.float32)).all()\n"
        "assert (f['blocks'][()] == want.astype(np.int32)).all()\n"
        "print('ok')\n";
    ckpt::test::write_text(dir.path() / "check.py", script);
    // From another folder: the sources are found next to arrays.h5.
    const auto result =
        ckpt::test::run_command("cd / && " + std::string(CKPT_PYTHON) + " " +
                                (dir.path() / "check.py").string() + " 2>&1");
    INFO(result.output);
    CHECK(result.status == 0);
    CHECK(result.output == "ok\n");
  }
}

TEST_CASE("a plain checkpoint loads sharded", "[mpi][sharded]") {
  SharedFolder dir("plain");
  const fs::path path = dir.path() / "ckpt";
  const ckpt::Shape global = {10, 3};
  if (me() == 0) {
    ckpt::save_checkpointables(
        path, {{"params",
                ckpt::Value::dict({{"w", whole(DType::kFloat64, global)}})}});
  }
  world()->barrier();
  const Box rows = ckpt::split_evenly(global, 0, count())[me()];
  const ckpt::Value loaded = load_params(
      path, ckpt::Value::dict(
                {{"w", ckpt::ShardedSpec{std::nullopt, global, {rows}}}}));
  const auto& w = loaded.at("w").as_sharded_array();
  CHECK(w.dtype == DType::kFloat64);
  REQUIRE(w.shards.size() == 1);
  CHECK(w.shards[0].data == box_of(DType::kFloat64, global, rows));
}

TEST_CASE("processes whose sharded arrays differ get the same clear error",
          "[mpi][sharded]") {
  SharedFolder dir("mismatch");
  const fs::path path = dir.path() / "ckpt";
  ckpt::Context context(mp_options());
  const auto save = [&](const ckpt::ShardedArray& a) {
    return ckpt::test::message_of<ckpt::InvalidArgumentError>([&] {
      ckpt::save_checkpointables(path,
                                 {{"params", ckpt::Value::dict({{"w", a}})}});
    });
  };
  const std::vector<Box> rows = ckpt::split_evenly({8, 4}, 0, count());
  // The last process gives another global shape.
  const ckpt::Shape global = me() == count() - 1 && count() > 1
                                 ? ckpt::Shape{8, 5}
                                 : ckpt::Shape{8, 4};
  ckpt::ShardedArray a{DType::kFloat32, global, {}, nullptr};
  a.shards.push_back({rows[me()].offset,
                      ckpt::Array::zeros(DType::kFloat32, rows[me()].shape)});
  if (count() > 1) {
    const std::string message = save(a);
    INFO(message);
    CHECK(message.find("key path [\"w\"]") != std::string::npos);
    CHECK(message.find("global shape") != std::string::npos);
    CHECK(!fs::exists(path));
  }
  // Every process gives the same rows: they overlap without being equal
  // when the boxes differ... here: rows 0-4 on one, 3-8 elsewhere.
  ckpt::ShardedArray overlapping{DType::kFloat32, {8, 4}, {}, nullptr};
  const Box mine = me() == 0 ? Box{{0, 0}, {5, 4}} : Box{{3, 0}, {5, 4}};
  overlapping.shards.push_back(
      {mine.offset, ckpt::Array::zeros(DType::kFloat32, mine.shape)});
  {
    const std::string message = save(overlapping);
    INFO(message);
    CHECK(message.find(count() > 1 ? "overlap" : "cover") != std::string::npos);
    CHECK(!fs::exists(path));
  }
  world()->barrier();
}

TEST_CASE("an async sharded save snapshots the shards and commits once",
          "[mpi][sharded]") {
  SharedFolder dir("async");
  const fs::path path = dir.path() / "ckpt";
  const ckpt::Shape global = {12, 7};
  const Box rows = ckpt::split_evenly(global, 0, count())[me()];
  ckpt::ShardedArray a{DType::kFloat32, global, {}, nullptr};
  a.shards.push_back({rows.offset, box_of(DType::kFloat32, global, rows)});
  {
    ckpt::Context context(mp_options());
    ckpt::AsyncSave pending = ckpt::save_checkpointables_async(
        path, {{"params", ckpt::Value::dict({{"w", a}})}});
    // Changed at once: the save took its snapshot in the blocking tier.
    auto* data = a.shards[0].data.data_as<float>();
    for (int64_t i = 0; i < a.shards[0].data.num_elements(); ++i) data[i] = -1;
    pending.result();
  }
  world()->barrier();
  CHECK(ckpt::load(path, nullptr, "params").at("w").as_array() ==
        whole(DType::kFloat32, global));
  // The metadata names the global shape and every stored box.
  const ckpt::Value metadata = ckpt::metadata(path, "params").metadata;
  const auto& spec = metadata.at("w").as_sharded_spec();
  CHECK(spec.global_shape == global);
  CHECK(spec.boxes == ckpt::split_evenly(global, 0, count()));
}

TEST_CASE("Orbax's storage from every process: one database over theirs",
          "[mpi][sharded][orbax]") {
  SharedFolder dir("orbax");
  const fs::path path = dir.path() / "ckpt";
  // Rows of 3 (the last cut by the edge), a 2-d block grid, every dtype.
  const ckpt::Shape global = {static_cast<int64_t>(3 * count() - 1), 4};
  std::vector<Box> rows;
  for (int64_t r = 0; r < global[0]; r += 3) {
    rows.push_back({{r, 0}, {std::min<int64_t>(3, global[0] - r), 4}});
  }
  const ckpt::Shape square = {8, 8};
  const std::vector<Box> blocks = grid(square, 2, 2);
  ckpt::ContextOptions options = mp_options();
  options.handler_options = {{"pytree", {{"storage", "orbax"}}}};
  {
    ckpt::Context context(options);
    ckpt::Value::Dict tree;
    for (DType dtype : ckpt::test::all_dtypes()) {
      tree.emplace_back(std::string(ckpt::dtype_name(dtype)),
                        sharded(dtype, global, rows, me(), count()));
    }
    tree.emplace_back("blocks",
                      sharded(DType::kFloat32, square, blocks, me(), count()));
    tree.emplace_back("step", 7);
    ckpt::save_checkpointables(path, {{"params", ckpt::Value::dict(tree)}});
  }
  // Every process that held a piece wrote its own database.
  for (int p = 0; p < count(); ++p) {
    CHECK(fs::exists(path / "params" / ("ocdbt.process_" + std::to_string(p)) /
                     "manifest.ocdbt"));
  }
  const ckpt::Value loaded = ckpt::load(path, nullptr, "params");
  for (DType dtype : ckpt::test::all_dtypes()) {
    INFO(ckpt::dtype_name(dtype));
    CHECK(loaded.at(ckpt::dtype_name(dtype)).as_array() ==
          whole(dtype, global));
  }
  CHECK(loaded.at("blocks").as_array() == whole(DType::kFloat32, square));
  CHECK(loaded.at("step").as_int() == 7);
  if (count() == 1) return;
  // Pieces on no grid (1 row, then 2 each) cannot be chunks of one zarr
  // array: refused by every process, naming the leaf; nothing committed.
  std::vector<Box> uneven = {{{0, 0}, {1, 4}}};
  for (int p = 1; p < count(); ++p) {
    uneven.push_back({{2 * p - 1, 0}, {2, 4}});
  }
  const ckpt::Shape uneven_shape = {2 * count() - 1, 4};
  ckpt::Context context(options);
  try {
    ckpt::save_checkpointables(
        dir.path() / "uneven",
        {{"params",
          ckpt::Value::dict({{"u", sharded(DType::kInt32, uneven_shape, uneven,
                                           me(), count())}})}});
    FAIL("saved pieces on no grid");
  } catch (const ckpt::UnimplementedError& e) {
    CHECK_THAT(e.what(), Catch::Contains("('u',)"));
    CHECK_THAT(e.what(), Catch::Contains("regular grid"));
  }
  CHECK_FALSE(fs::exists(dir.path() / "uneven"));
}
