// Sharded arrays in one process: a save of several pieces of a global
// array, loads as a whole and by box (resharding, dtype casts, caller
// buffers), what save and load refuse, and damaged piece files. The
// multi-process side is in tests/mpi/sharded_test.cpp.
#include <ckpt/checkpoint.h>
#include <ckpt/dlpack.h>
#include <ckpt/errors.h>
#include <ckpt/sdk/boxes.h>
#include <ckpt/value.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "plugins/pytree/pytree_test_util.h"
#include "test_util.h"

using namespace ckpt;
using namespace ckpt::test;

namespace {

constexpr int64_t kRows = 10;
constexpr int64_t kCols = 6;

// w[i][j] = i * kCols + j, as float32.
Array rows_of(int64_t first, int64_t count) {
  std::vector<float> v;
  for (int64_t i = first; i < first + count; ++i) {
    for (int64_t j = 0; j < kCols; ++j) v.push_back(float(i * kCols + j));
  }
  return Array::from(std::move(v), {count, kCols});
}

// w split into rows [0, 3), [3, 7), [7, 10): three pieces of one process.
ShardedArray three_pieces() {
  ShardedArray w{DType::kFloat32, {kRows, kCols}, {}, nullptr};
  w.shards.push_back({{0, 0}, rows_of(0, 3)});
  w.shards.push_back({{3, 0}, rows_of(3, 4)});
  w.shards.push_back({{7, 0}, rows_of(7, 3)});
  return w;
}

void save_params(const fs::path& path, const Value& w) {
  save_checkpointables(path, {{"params", Value::dict({{"w", w}, {"n", 3}})}});
}

Value load_params(const fs::path& path, const Value& abstract) {
  return load_checkpointables(path, {{"params", abstract}}).at(0).second;
}

template <class E>
std::string save_error(const fs::path& path, const ShardedArray& w) {
  return message_of<E>([&] { save_params(path, w); });
}

}  // namespace

TEST_CASE("a sharded array of one process loads whole and by box",
          "[sharded]") {
  TempDir dir;
  const fs::path path = dir / "ckpt";
  save_params(path, three_pieces());
  CHECK(folder_entries(path / "params") ==
        std::vector<std::string>{"_METADATA", "_METADATA.process_0",
                                 "_TREE_INDEX", "_TREE_INDEX.process_0",
                                 "arrays.h5", "arrays.process_0.h5"});
  const Array whole = rows_of(0, kRows);
  // As saved: one plain array of the global shape.
  CHECK(load(path, nullptr, "params").at("w").as_array() == whole);
  // Other boxes than the saved ones: two column halves, cast to float64.
  const std::vector<Box> halves = split_evenly({kRows, kCols}, 1, 2);
  const Value by_box = load_params(
      path,
      Value::dict({{"w", ShardedSpec{DType::kFloat64, {kRows, kCols}, halves}},
                   {"n", Value::scalar_spec(Value::Kind::kInt)}}));
  const ShardedArray& w = by_box.at("w").as_sharded_array();
  REQUIRE(w.shards.size() == 2);
  for (size_t h = 0; h < 2; ++h) {
    CHECK(w.shards[h].box() == halves[h]);
    const std::vector<double> got = w.shards[h].data.to_vector<double>();
    for (int64_t i = 0; i < kRows; ++i) {
      for (int64_t j = 0; j < 3; ++j) {
        CHECK(got[size_t(i * 3 + j)] == double(i * kCols + j + 3 * int64_t(h)));
      }
    }
  }
  // An empty box, and a box of one element.
  const Value small = load_params(
      path,
      Value::dict({{"w", ShardedSpec{std::nullopt,
                                     {kRows, kCols},
                                     {{{4, 2}, {0, 3}}, {{9, 5}, {1, 1}}}}},
                   {"n", Value::scalar_spec(Value::Kind::kInt)}}));
  const ShardedArray& s = small.at("w").as_sharded_array();
  REQUIRE(s.shards.size() == 2);
  CHECK(s.shards[0].data.num_elements() == 0);
  CHECK(s.shards[1].data.to_vector<float>() == std::vector<float>{59});
  // Into the caller's buffer, in place.
  std::vector<float> buffer(kRows * kCols, -1);
  const Value filled = load_params(
      path, Value::dict({{"w", Array::borrow(DType::kFloat32, {kRows, kCols},
                                             buffer.data())},
                         {"n", Value::scalar_spec(Value::Kind::kInt)}}));
  CHECK(filled.at("w").as_array().data() == buffer.data());
  CHECK(filled.at("w").as_array() == whole);
  // Metadata: global shape, dtype and the stored boxes.
  const ShardedSpec spec =
      metadata(path, "params").metadata.at("w").as_sharded_spec();
  CHECK(spec.dtype == DType::kFloat32);
  CHECK(spec.global_shape == Shape{kRows, kCols});
  CHECK(spec.boxes == std::vector<Box>{{{0, 0}, {3, kCols}},
                                       {{3, 0}, {4, kCols}},
                                       {{7, 0}, {3, kCols}}});
  // The piece file is checked by the pytree handler (size only in
  // _CHECKSUMS); its record by the core.
  const std::string checksums = read_text(path / "_CHECKSUMS");
  const size_t line = checksums.find(" params/arrays.process_0.h5\n");
  REQUIRE(line != std::string::npos);
  CHECK(checksums.compare(checksums.rfind('\n', line) + 1, 2, "h ") == 0);
  CHECK(check_checkpointable_bytes(path, "params"));
}

TEST_CASE("shards from DLPack tensors, kept by reference when immutable",
          "[sharded]") {
  TempDir dir;
  const fs::path path = dir / "ckpt";
  const Array top = rows_of(0, 4), bottom = rows_of(4, kRows - 4);
  ShardedArray w{DType::kFloat32, {kRows, kCols}, {}, nullptr};
  w.shards.push_back(shard_from_dlpack({0, 0}, to_dlpack(top), false,
                                       /*immutable=*/true));
  w.shards.push_back(shard_from_dlpack({4, 0}, to_dlpack(bottom)));
  CHECK(w.shards[0].data.immutable());
  CHECK(w.shards[0].data.data() == top.data());  // no copy
  save_checkpointables_async(path, {{"params", Value::dict({{"w", w}})}})
      .result();
  CHECK(load(path, nullptr, "params").at("w").as_array() == rows_of(0, kRows));
}

TEST_CASE("a plain array loads sharded", "[sharded]") {
  TempDir dir;
  const fs::path path = dir / "ckpt";
  save_params(path, rows_of(0, kRows));
  const Value loaded = load_params(
      path, Value::dict({{"w", ShardedSpec{DType::kInt32,
                                           {kRows, kCols},
                                           {{{2, 1}, {3, 4}}}}},
                         {"n", Value::scalar_spec(Value::Kind::kInt)}}));
  const ShardedArray& w = loaded.at("w").as_sharded_array();
  REQUIRE(w.shards.size() == 1);
  std::vector<int32_t> want;
  for (int64_t i = 2; i < 5; ++i) {
    for (int64_t j = 1; j < 5; ++j) want.push_back(int32_t(i * kCols + j));
  }
  CHECK(w.shards[0].data.to_vector<int32_t>() == want);
}

TEST_CASE("save refuses shards that do not tile the global shape",
          "[sharded]") {
  TempDir dir;
  const fs::path path = dir / "ckpt";
  ShardedArray gap = three_pieces();
  gap.shards.pop_back();
  CHECK_THAT(
      save_error<InvalidArgumentError>(path, gap),
      Catch::Contains("[\"w\"]") && Catch::Contains("cover 42 of the 60"));
  ShardedArray overlap = three_pieces();
  overlap.shards[1].offset = {2, 0};
  CHECK_THAT(save_error<InvalidArgumentError>(path, overlap),
             Catch::Contains("overlap"));
  ShardedArray outside = three_pieces();
  outside.shards[2].offset = {8, 0};
  CHECK_THAT(save_error<InvalidArgumentError>(path, outside),
             Catch::Contains("inside the global shape"));
  ShardedArray rank = three_pieces();
  rank.shards[0].offset = {0};
  CHECK_THAT(save_error<InvalidArgumentError>(path, rank),
             Catch::Contains("inside the global shape"));
  ShardedArray dtype = three_pieces();
  dtype.shards[0].data = Array::zeros(DType::kInt8, {3, kCols});
  CHECK_THAT(save_error<InvalidArgumentError>(path, dtype),
             Catch::Contains("int8 shard"));
  ShardedArray scalar{DType::kFloat32, {}, {}, nullptr};
  scalar.shards.push_back({{}, Array::from<float>({1})});
  scalar.shards[0].data = Array::zeros(DType::kFloat32, {});
  CHECK_THAT(save_error<InvalidArgumentError>(path, scalar),
             Catch::Contains("rank-0"));
  CHECK(!fs::exists(path));
  CHECK(folder_entries(dir.path()).empty());
}

TEST_CASE("load refuses boxes of another global shape or outside it",
          "[sharded]") {
  TempDir dir;
  const fs::path path = dir / "ckpt";
  save_params(path, three_pieces());
  const auto error = [&](const Value& w) {
    return message_of<InvalidArgumentError>([&] {
      load_params(
          path, Value::dict(
                    {{"w", w}, {"n", Value::scalar_spec(Value::Kind::kInt)}}));
    });
  };
  CHECK_THAT(error(ShardedSpec{std::nullopt, {kRows, 7}, {}}),
             Catch::Contains("global shape mismatch"));
  CHECK_THAT(
      error(ShardedSpec{std::nullopt, {kRows, kCols}, {{{9, 0}, {2, 1}}}}),
      Catch::Contains("inside the global shape"));
  CHECK_THAT(error(ArraySpec{DType::kFloat32, {kRows, 5}}),
             Catch::Contains("shape mismatch"));
}

TEST_CASE("damaged piece files are data loss naming the file", "[sharded]") {
  TempDir dir;
  const fs::path original = dir / "original";
  save_params(original, three_pieces());
  const auto damaged = [&](const std::string& tag,
                           const std::function<void(const fs::path&)>& damage,
                           bool reseal) {
    const fs::path copy = dir / tag;
    fs::copy(original, copy, fs::copy_options::recursive);
    damage(copy / "params");
    if (reseal) reseal_checksums(copy);
    return message_of<DataLossError>([&] { load(copy, nullptr, "params"); });
  };
  // A flipped element: the piece's checksum.
  CHECK_THAT(damaged(
                 "flip",
                 [](const fs::path& p) {
                   std::string bytes = read_text(p / "arrays.process_0.h5");
                   // w[9][5] = 59.0f = 0x426c0000, last element written.
                   const std::string needle("\x00\x00\x6c\x42", 4);
                   const size_t at = bytes.rfind(needle);
                   REQUIRE(at != std::string::npos);
                   bytes[at + 2] ^= 1;
                   write_text(p / "arrays.process_0.h5", bytes);
                 },
                 false),
             Catch::Contains("checksum mismatch") &&
                 Catch::Contains("arrays.process_0.h5"));
  // Truncated.
  CHECK_THAT(damaged(
                 "truncated",
                 [](const fs::path& p) {
                   fs::resize_file(p / "arrays.process_0.h5", 1000);
                 },
                 false),
             Catch::Contains("arrays.process_0.h5"));
  // The record of the pieces removed, even with the core's record resealed.
  CHECK_THAT(
      damaged(
          "no-record",
          [](const fs::path& p) {
            fs::remove(p / "_METADATA.process_0");
            fs::remove(p / "_TREE_INDEX.process_0");
          },
          true),
      Catch::Contains("_METADATA.process_0") && Catch::Contains("missing"));
  CHECK_THAT(
      damaged(
          "no-index",
          [](const fs::path& p) { fs::remove(p / "_TREE_INDEX.process_0"); },
          true),
      Catch::Contains("_TREE_INDEX.process_0 is missing"));
  // The pieces, as recorded in _TREE_INDEX, that overlap.
  CHECK_THAT(damaged(
                 "index-overlap",
                 [](const fs::path& p) {
                   edit_index(p, [](ckpt::pytree::TreeMetadata& t) {
                     leaf_at(t, {"w"}).pieces[1].offset[0] = 2;
                   });
                 },
                 true),
             Catch::Contains("_TREE_INDEX") && Catch::Contains("overlap"));
  // _METADATA's (format 2) pieces that overlap, or name a process that wrote
  // nothing.
  const auto edit_pieces = [](const std::function<void(nlohmann::json&)>& f) {
    return [f](const fs::path& p) {
      as_format_2(p);
      nlohmann::ordered_json meta =
          nlohmann::ordered_json::parse(read_text(p / "_METADATA"));
      nlohmann::json pieces = meta["tree_metadata"]["('w',)"]["value_metadata"]
                                  ["storage"]["pieces"];
      f(pieces);
      meta["tree_metadata"]["('w',)"]["value_metadata"]["storage"]["pieces"] =
          pieces;
      write_text(p / "_METADATA", meta.dump(1));
    };
  };
  CHECK_THAT(damaged("overlap", edit_pieces([](nlohmann::json& pieces) {
                       pieces[1]["offset"][0] = 2;
                     }),
                     true),
             Catch::Contains("storage.pieces") && Catch::Contains("overlap"));
  CHECK_THAT(damaged("process-5", edit_pieces([](nlohmann::json& pieces) {
                       pieces[2]["process"] = 5;
                     }),
                     true),
             Catch::Contains("_METADATA.process_5"));
  CHECK_THAT(
      damaged("other-shape", edit_pieces([](nlohmann::json& pieces) {
                pieces[0]["shape"][0] = 4;
                pieces[1]["offset"][0] = 4;
                pieces[1]["shape"][0] = 3;
              }),
              true),
      Catch::Contains("is not in") && Catch::Contains("_METADATA.process_0"));
}

TEST_CASE("boxes tile a global shape exactly", "[sharded][sdk]") {
  using sdk::tiling_problem;
  const std::vector<Box> rows = split_evenly({7, 3}, 0, 3);
  CHECK(rows ==
        std::vector<Box>{{{0, 0}, {3, 3}}, {{3, 0}, {2, 3}}, {{5, 0}, {2, 3}}});
  CHECK(tiling_problem(rows, {7, 3}).empty());
  CHECK_THAT(tiling_problem(std::vector<Box>{rows[0], rows[2]}, {7, 3}),
             Catch::Contains("cover 15 of the 21"));
  CHECK_THAT(tiling_problem(
                 std::vector<Box>{rows[0], {{2, 1}, {1, 1}}, rows[1], rows[2]},
                 {7, 3}),
             Catch::Contains("overlap"));
  CHECK_THAT(tiling_problem(std::vector<Box>{{{0, 0}, {8, 3}}}, {7, 3}),
             Catch::Contains("inside"));
  // Boxes with no element never overlap; an empty global shape is tiled by
  // nothing.
  CHECK(tiling_problem(std::vector<Box>{}, {0, 3}).empty());
  CHECK(tiling_problem(std::vector<Box>{{{0, 0}, {7, 3}}, {{2, 1}, {0, 1}}},
                       {7, 3})
            .empty());
  CHECK_THROWS_AS(split_evenly({7, 3}, 2, 3), InvalidArgumentError);
}
