// Python Orbax's pytree storage (OCDBT + zarr v3) read by the pytree
// plugin, on checkpoints tests/orbax_writer.cpp encodes: every dtype,
// chunk grids, shards, byte orders, codecs, per-process sub-databases,
// fill values, scalars and strings, loads into abstract trees, and damage
// of every file. The fixtures Python Orbax wrote are in
// orbax_fixtures_test.cpp.
#include <ckpt/checkpoint.h>
#include <ckpt/errors.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>

#include "orbax/zarr_array.h"
#include "plugins/pytree/orbax/orbax_writer.h"
#include "plugins/pytree/pytree_test_util.h"
#include "test_util.h"

using namespace ckpt;
using namespace ckpt::test;
namespace ow = ckpt::test::orbax;

namespace {

std::string bytes_of(const Array& a) {
  return std::string(
      static_cast<const char*>(a.data()),
      static_cast<size_t>(a.num_elements()) * dtype_size(a.dtype()));
}

ckpt_dtype c_dtype(DType d) { return static_cast<ckpt_dtype>(d); }

ow::Leaf array_leaf(std::vector<std::string> path, const Array& a) {
  ow::Leaf leaf;
  leaf.path = std::move(path);
  leaf.dtype = c_dtype(a.dtype());
  leaf.shape = a.shape();
  leaf.bytes = bytes_of(a);
  return leaf;
}

// Array `a` of a freshly made sample with a shape of its own.
Array sample(DType dtype, int seed, Shape shape) {
  return sample_array(dtype, seed, std::move(shape));
}

const Value& at_path(const Value& tree, const std::vector<std::string>& path) {
  const Value* v = &tree;
  for (const std::string& k : path) v = &v->at(k);
  return *v;
}

void flip_byte(const fs::path& file, uint64_t offset) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x10);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

}  // namespace

TEST_CASE("an Orbax pytree of every dtype loads with its values",
          "[orbax][pytree]") {
  TempDir dir;
  std::vector<ow::Leaf> leaves;
  std::vector<Array> arrays;
  int seed = 0;
  for (DType dtype : all_dtypes()) {
    arrays.push_back(sample(dtype, seed++, {5, 7}));
    ow::Leaf leaf =
        array_leaf({"arrays", std::string(dtype_name(dtype))}, arrays.back());
    leaf.chunk_shape = {2, 4};  // edge chunks on both axes
    leaves.push_back(leaf);
  }
  ow::write_pytree(dir / "state", leaves);
  const Value loaded = load_tree(dir / "state");
  for (size_t i = 0; i < leaves.size(); ++i) {
    INFO(dtype_name(arrays[i].dtype()));
    CHECK(at_path(loaded, leaves[i].path).as_array() == arrays[i]);
  }
  // Metadata: each array's real dtype and shape, from its zarr.json.
  const Value metadata = tree_metadata(dir / "state");
  for (size_t i = 0; i < leaves.size(); ++i) {
    const ArraySpec& spec = at_path(metadata, leaves[i].path).as_array_spec();
    CHECK(spec.dtype == arrays[i].dtype());
    CHECK(spec.shape == arrays[i].shape());
  }
}

TEST_CASE(
    "an Orbax pytree of zarr v2 arrays (older Orbax) loads with its values",
    "[orbax][pytree]") {
  TempDir dir;
  std::vector<ow::Leaf> leaves;
  std::vector<Array> arrays;
  int seed = 40;
  for (DType dtype : all_dtypes()) {
    arrays.push_back(sample(dtype, seed++, {5, 7}));
    ow::Leaf leaf =
        array_leaf({"v2", std::string(dtype_name(dtype))}, arrays.back());
    leaf.chunk_shape = {2, 3};
    leaf.sharded = false;
    // Both byte orders, both separators, with and without zstd.
    leaf.big_endian = seed % 2 == 0;
    leaf.separator = seed % 3 == 0 ? '/' : '.';
    leaf.compress = seed % 4 != 0;
    leaves.push_back(leaf);
  }
  // A null fill value: chunks never written read as zeros.
  const Array sparse_values =
      Array::from(std::vector<int32_t>{0, 0, 7, 0, 0, 0}, {6});
  ow::Leaf sparse = array_leaf({"sparse"}, sparse_values);
  sparse.chunk_shape = {2};
  sparse.sharded = false;
  sparse.fill_value_json = "null";
  leaves.push_back(sparse);
  ow::Options o;
  o.zarr2 = true;
  o.skip_fill_chunks = true;
  ow::write_pytree(dir / "state", leaves, o);
  const Value loaded = load_tree(dir / "state");
  for (size_t i = 0; i < arrays.size(); ++i) {
    INFO(dtype_name(arrays[i].dtype()));
    CHECK(at_path(loaded, leaves[i].path).as_array() == arrays[i]);
  }
  CHECK(loaded.at("sparse").as_array() == sparse_values);
  const Value metadata = tree_metadata(dir / "state");
  CHECK(metadata.at("v2").at("bfloat16").as_array_spec().dtype ==
        DType::kBFloat16);
  CHECK(metadata.at("v2").at("int64").as_array_spec().shape == Shape{5, 7});

  // Codecs and orders this reader does not decode are named.
  const std::string text = R"({"zarr_format": 2, "shape": [4], "chunks": [4],
      "dtype": "<f4", "compressor": {"id": "blosc"}, "fill_value": 0,
      "filters": null, "order": "C"})";
  CHECK_THROWS_WITH(ckpt::pytree::zarr::parse_zarray(text),
                    Catch::Contains("blosc"));
  const std::string fortran = R"({"zarr_format": 2, "shape": [4],
      "chunks": [4], "dtype": "<f4", "compressor": null, "fill_value": 0,
      "filters": null, "order": "F"})";
  CHECK_THROWS_WITH(ckpt::pytree::zarr::parse_zarray(fortran),
                    Catch::Contains("\"F\""));
}

TEST_CASE(
    "shards of inner chunks, big-endian, uncompressed and unsharded Orbax "
    "arrays load",
    "[orbax][pytree]") {
  TempDir dir;
  const Array a = sample(DType::kFloat64, 1, {9, 6, 4});
  const Array b = sample(DType::kInt16, 2, {10});
  const Array c = sample(DType::kComplex64, 3, {3, 5});
  const Array d = sample(DType::kUInt32, 4, {4, 4});
  std::vector<ow::Leaf> leaves = {array_leaf({"a"}, a), array_leaf({"b"}, b),
                                  array_leaf({"c"}, c), array_leaf({"d"}, d)};
  leaves[0].chunk_shape = {4, 6, 4};  // shards padded at the edge
  leaves[0].inner_chunk_shape = {2, 3, 2};
  leaves[1].big_endian = true;
  leaves[1].chunk_shape = {3};
  leaves[2].big_endian = true;  // each part of a complex swapped
  leaves[2].compress = false;
  leaves[3].sharded = false;
  leaves[3].chunk_shape = {3, 2};
  ow::write_pytree(dir / "state", leaves);
  const Value loaded = load_tree(dir / "state");
  CHECK(loaded.at("a").as_array() == a);
  CHECK(loaded.at("b").as_array() == b);
  CHECK(loaded.at("c").as_array() == c);
  CHECK(loaded.at("d").as_array() == d);
}

TEST_CASE(
    "an Orbax pytree of two processes' sub-databases loads through the root "
    "database's B+tree",
    "[orbax][pytree]") {
  for (int root_height : {0, 1}) {
    DYNAMIC_SECTION("root height " << root_height) {
      TempDir dir;
      std::vector<ow::Leaf> leaves;
      std::vector<Array> arrays;
      for (int i = 0; i < 7; ++i) {
        arrays.push_back(sample(DType::kFloat32, i, {64, 3 + i}));
        ow::Leaf leaf = array_leaf(
            {"params", "layer_" + std::to_string(i), "kernel"}, arrays.back());
        leaf.chunk_shape = {32, 3 + i};
        leaf.process = i % 2;
        leaves.push_back(leaf);
      }
      ow::Options options;
      options.processes = 2;
      options.root_height = root_height;
      options.keys_per_leaf = 4;
      options.max_inline_value_bytes = 64;  // chunks in the data files
      const ow::Written written =
          ow::write_pytree(dir / "state", leaves, options);
      CHECK(written.value_files.size() == 2);
      const Value loaded = load_tree(dir / "state");
      for (size_t i = 0; i < leaves.size(); ++i) {
        CHECK(at_path(loaded, leaves[i].path).as_array() == arrays[i]);
      }
    }
  }
}

TEST_CASE("an Orbax pytree with a numbered manifest loads", "[orbax][pytree]") {
  TempDir dir;
  const Array a = sample(DType::kInt64, 5, {6});
  ow::Options options;
  options.numbered_manifest = true;
  options.compress_nodes = false;
  ow::write_pytree(dir / "state", {array_leaf({"a"}, a)}, options);
  CHECK(load_tree(dir / "state").at("a").as_array() == a);
}

TEST_CASE(
    "chunks Orbax never wrote hold the fill value, and a missing chunk is "
    "damage when every chunk was written",
    "[orbax][pytree]") {
  TempDir dir;
  // Zero except one corner: most chunks and inner chunks are all fill.
  std::vector<float> values(12 * 8, 0.0f);
  values[0] = 3.5f;
  const Array a = Array::from(values, {12, 8});
  std::vector<float> ones(4 * 4, 1.5f);
  ones[5] = -2.0f;
  const Array b = Array::from(ones, {4, 4});
  std::vector<ow::Leaf> leaves = {array_leaf({"a"}, a), array_leaf({"b"}, b)};
  leaves[0].chunk_shape = {4, 4};
  leaves[0].inner_chunk_shape = {2, 2};
  leaves[1].chunk_shape = {2, 2};
  leaves[1].fill_value_json = "1.5";
  const float fill = 1.5f;
  leaves[1].fill_bytes.assign(reinterpret_cast<const char*>(&fill), 4);
  ow::Options options;
  options.skip_fill_chunks = true;
  ow::write_pytree(dir / "state", leaves, options);
  const Value loaded = load_tree(dir / "state");
  CHECK(loaded.at("a").as_array() == a);
  CHECK(loaded.at("b").as_array() == b);

  // Had the writer stored every chunk (Orbax's default), the missing ones
  // would be damage.
  const fs::path metadata = dir / "state" / "_METADATA";
  std::string text = read_text(metadata);
  const std::string flag = "\"store_array_data_equal_to_fill_value\":false";
  REQUIRE(text.find(flag) != std::string::npos);
  text.replace(text.find(flag), flag.size(),
               "\"store_array_data_equal_to_fill_value\":true");
  fs::remove(metadata);
  std::ofstream(metadata) << text;
  const std::string message =
      message_of<DataLossError>([&] { load_tree(dir / "state"); });
  CHECK(message.find("chunk c/") != std::string::npos);
  CHECK(message.find("is missing") != std::string::npos);
}

TEST_CASE("scalars and strings of an Orbax pytree load as scalars",
          "[orbax][pytree]") {
  TempDir dir;
  auto scalar = [](std::vector<std::string> path, DType dtype,
                   const void* value) {
    ow::Leaf leaf;
    leaf.path = std::move(path);
    leaf.value_type = "scalar";
    leaf.dtype = c_dtype(dtype);
    leaf.bytes.assign(static_cast<const char*>(value), dtype_size(dtype));
    return leaf;
  };
  const int64_t step = 1234;
  const double lr = 0.125;
  const bool done = true;
  const int32_t small = -7;
  ow::Leaf name;
  name.path = {"name"};
  name.value_type = "string";
  name.text = "run-42";
  ow::write_pytree(dir / "state",
                   {scalar({"step"}, DType::kInt64, &step),
                    scalar({"opt", "lr"}, DType::kFloat64, &lr),
                    scalar({"done"}, DType::kBool, &done),
                    scalar({"small"}, DType::kInt32, &small), name});
  const Value loaded = load_tree(dir / "state");
  CHECK(loaded.at("step").as_int() == 1234);
  CHECK(loaded.at("opt").at("lr").as_double() == 0.125);
  CHECK(loaded.at("done").as_bool());
  CHECK(loaded.at("small").as_int() == -7);
  CHECK(loaded.at("name").as_string() == "run-42");
}

TEST_CASE(
    "partial loads, dtype casts, shape fitting and caller buffers work on "
    "Orbax arrays",
    "[orbax][pytree]") {
  TempDir dir;
  const Array w = sample(DType::kFloat32, 1, {4, 3});
  const Array b = sample(DType::kInt32, 2, {3});
  const Array skipped = sample(DType::kInt8, 3, {100});
  ow::write_pytree(dir / "state", {array_leaf({"w"}, w), array_leaf({"b"}, b),
                                   array_leaf({"skipped"}, skipped)});
  // Into the caller's buffer, and as float64.
  Array into = Array::zeros(DType::kFloat32, {4, 3});
  const Value abstract =
      Value::dict({{"w", into}, {"b", ArraySpec{DType::kFloat64, {3}}}});
  const Value loaded =
      load_tree(dir / "state", &abstract, {{"partial_load", true}});
  CHECK(loaded.at("w").as_array() == w);
  CHECK(into == w);
  CHECK(loaded.at("w").as_array().data() == into.data());
  const Array& b64 = loaded.at("b").as_array();
  REQUIRE(b64.dtype() == DType::kFloat64);
  for (int i = 0; i < 3; ++i) {
    CHECK(static_cast<const double*>(b64.data())[i] ==
          static_cast<const int32_t*>(b.data())[i]);
  }
  CHECK(loaded.find("skipped") == nullptr);
  // Without partial_load, leaving an array out is an error.
  CHECK_THROWS_AS(load_tree(dir / "state", &abstract), InvalidArgumentError);
}

TEST_CASE(
    "a damaged, truncated or missing file of an Orbax pytree is an error "
    "naming it, never a crash or wrong values",
    "[orbax][pytree][integrity]") {
  TempDir source;
  std::vector<ow::Leaf> leaves;
  std::vector<Array> arrays;
  for (int i = 0; i < 4; ++i) {
    arrays.push_back(sample(DType::kFloat32, i, {40, 10}));
    ow::Leaf leaf = array_leaf({"p", std::to_string(i)}, arrays.back());
    leaf.chunk_shape = {20, 10};
    leaf.inner_chunk_shape = {10, 10};
    leaf.process = i % 2;
    leaves.push_back(leaf);
  }
  ow::Options options;
  options.processes = 2;
  options.keys_per_leaf = 3;
  options.max_inline_value_bytes = 256;
  const ow::Written written =
      ow::write_pytree(source / "state", leaves, options);
  std::vector<std::string> files = written.manifests;
  files.insert(files.end(), written.node_files.begin(),
               written.node_files.end());
  files.insert(files.end(), written.value_files.begin(),
               written.value_files.end());
  for (const std::string& file : files) {
    const bool value_file =
        std::find(written.value_files.begin(), written.value_files.end(),
                  file) != written.value_files.end();
    for (const char* damage : {"truncate", "flip", "delete"}) {
      DYNAMIC_SECTION(file << ": " << damage) {
        TempDir dir;
        fs::copy(source / "state", dir / "state", fs::copy_options::recursive);
        const fs::path target = dir / "state" / file;
        const auto size = fs::file_size(target);
        if (std::string(damage) == "truncate") {
          fs::resize_file(target, size / 2);
        } else if (std::string(damage) == "flip") {
          flip_byte(target, size / 2);
        } else {
          fs::remove(target);
        }
        try {
          const Value loaded = load_tree(dir / "state");
          // Only a file the load does not read (a sub-database's own
          // manifest and nodes: the root refers to their values directly)
          // may be damaged without an error, and then every value is
          // right. A flipped bit in a chunk's bytes is the exception: OCDBT
          // keeps no checksum of values (see plugins/pytree/README.md).
          if (!(value_file && std::string(damage) == "flip")) {
            for (size_t i = 0; i < leaves.size(); ++i) {
              CHECK(at_path(loaded, leaves[i].path).as_array() == arrays[i]);
            }
          }
        } catch (const Error& e) {
          const std::string message = e.what();
          INFO(message);
          CHECK(message.find("pytree checkpointable") != std::string::npos);
          if (std::string(damage) != "flip" || !value_file) {
            CHECK(message.find(fs::path(file).filename().string()) !=
                  std::string::npos);
          }
        }
      }
    }
  }
}

TEST_CASE(
    "a data file named outside the pytree's folder or through a symbolic "
    "link is refused",
    "[orbax][pytree][integrity]") {
  TempDir dir;
  const Array a = sample(DType::kFloat32, 1, {64, 8});
  ow::Options options;
  options.max_inline_value_bytes = 16;
  options.root_height = 0;
  const ow::Written written =
      ow::write_pytree(dir / "state", {array_leaf({"a"}, a)}, options);
  // The value file's folder replaced by a link to a copy elsewhere.
  TempDir elsewhere;
  const fs::path sub = dir / "state" / "ocdbt.process_0";
  fs::copy(sub / "d", elsewhere / "d", fs::copy_options::recursive);
  fs::remove_all(sub / "d");
  fs::create_directory_symlink(elsewhere / "d", sub / "d");
  const std::string message =
      message_of<DataLossError>([&] { load_tree(dir / "state"); });
  CHECK(message.find("symbolic link") != std::string::npos);
}
