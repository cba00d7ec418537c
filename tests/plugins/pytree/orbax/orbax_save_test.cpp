// The pytree handler's "storage": "orbax": what it writes loads back in
// ckpt element for element, is laid out as Orbax's save_pytree lays it out,
// is covered by the checkpoint's checksums, and names what it refuses.
// (orbax_interop.py has the pinned Orbax restore it.)
#include <ckpt/checkpoint.h>
#include <ckpt/context.h>
#include <ckpt/errors.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "orbax/ocdbt_database.h"
#include "plugins/pytree/pytree_test_util.h"
#include "test_util.h"

using namespace ckpt;
using namespace ckpt::test;

namespace {

const nlohmann::json kOrbax = {{"storage", "orbax"}};

Value mixed_tree() {
  Value tree = Value::dict();
  int seed = 0;
  Value arrays = Value::dict();
  for (DType d : all_dtypes()) {
    arrays.set(std::string(dtype_name(d)), sample_array(d, ++seed));
  }
  tree.set("arrays", arrays);
  tree.set("scalar", Array::from<float>({42.5f}, {}));
  tree.set("empty", Array::zeros(DType::kInt32, {0, 3}));
  tree.set("big", sample_array(DType::kFloat32, 99, {300, 200}));
  tree.set("count", 7);
  tree.set("rate", 0.25);
  tree.set("flag", true);
  tree.set("name", std::string("caf\xc3\xa9"));
  tree.set("nothing", Value());
  tree.set("layers", Value::list({sample_array(DType::kInt16, 5, {4}),
                                  Value::dict({{"w", 3}})}));
  return tree;
}

std::vector<std::string> files_under(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file())
      out.push_back(fs::relative(e.path(), dir).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void save_with(const fs::path& path, const Value& tree,
               const nlohmann::json& pytree_options) {
  ContextOptions options;
  options.fsync = false;
  options.handler_options = {{"pytree", pytree_options}};
  Context context(options);
  save(path, tree);
}

}  // namespace

TEST_CASE("storage orbax: every kind of leaf round-trips through ckpt",
          "[pytree][orbax]") {
  const Value tree = mixed_tree();
  for (const char* compression : {"zstd", "none"}) {
    INFO("compression " << compression);
    TempDir dir;
    nlohmann::json options = kOrbax;
    options["compression"] = compression;
    save_tree(dir / "state", tree, options);
    CHECK(load_tree(dir / "state") == tree);
    // Orbax's layout: its _METADATA, a root database and the process's.
    const nlohmann::json meta =
        nlohmann::json::parse(read_text(dir / "state" / "_METADATA"));
    CHECK(meta.at("use_ocdbt") == true);
    CHECK(meta.at("use_zarr3") == true);
    CHECK(meta.at("tree_metadata")
              .at("('count',)")
              .at("value_metadata")
              .at("value_type") == "scalar");
    CHECK(meta.at("tree_metadata")
              .at("('nothing',)")
              .at("value_metadata")
              .at("skip_deserialize") == true);
    const auto files = files_under(dir / "state");
    CHECK(std::count(files.begin(), files.end(), "manifest.ocdbt") == 1);
    CHECK(std::count(files.begin(), files.end(),
                     "ocdbt.process_0/manifest.ocdbt") == 1);
    CHECK(std::count(files.begin(), files.end(), "_strings.json") == 1);
    CHECK(std::count(files.begin(), files.end(), "arrays.h5") == 0);
  }
}

TEST_CASE("storage orbax: an array above 64 MiB is split into inner chunks",
          "[pytree][orbax]") {
  // 1280 rows of 64 KiB: two inner chunks of 640 rows in one shard.
  std::vector<uint8_t> bytes(size_t{1280} * 65536);
  for (size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
  }
  const Value tree = Value::dict(
      {{"w", Array::copy(DType::kUInt8, {1280, 65536}, bytes.data())}});
  TempDir dir;
  save_tree(dir / "state", tree, kOrbax);
  CHECK(load_tree(dir / "state") == tree);
}

TEST_CASE("storage orbax: a sharded array is stored as one global array",
          "[pytree][orbax]") {
  // Its chunk grid is the pieces' boxes where they tile one (the last cell
  // of a dimension may be cut by the edge); else, from one process, one
  // chunk of the whole array.
  struct Split {
    int columns_of;  // 0: split_evenly into 4 (2, 2, 1, 1: no grid)
    std::vector<int64_t> chunk;
    std::vector<std::string> chunk_keys;
  };
  const std::vector<Split> splits = {
      {2, {8, 2}, {"s/c/0/0", "s/c/0/1", "s/c/0/2"}},
      {4, {8, 4}, {"s/c/0/0", "s/c/0/1"}},
      {0, {8, 6}, {"s/c/0/0"}}};
  std::vector<int64_t> all(8 * 6);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i * 3);
  for (const Split& split : splits) {
    INFO("columns of " << split.columns_of);
    std::vector<Box> boxes;
    if (split.columns_of == 0) {
      boxes = split_evenly({8, 6}, 1, 4);
    } else {
      for (int64_t c = 0; c < 6; c += split.columns_of) {
        boxes.push_back(
            {{0, c}, {8, std::min<int64_t>(split.columns_of, 6 - c)}});
      }
    }
    ShardedArray s{DType::kInt64, {8, 6}, {}, nullptr};
    for (const Box& b : boxes) {
      std::vector<int64_t> part;
      for (int64_t r = 0; r < b.shape[0]; ++r) {
        for (int64_t c = 0; c < b.shape[1]; ++c) {
          part.push_back(all[static_cast<size_t>((b.offset[0] + r) * 6 +
                                                 b.offset[1] + c)]);
        }
      }
      s.shards.push_back(
          {b.offset, Array::copy(DType::kInt64, b.shape, part.data())});
    }
    TempDir dir;
    save_with(dir / "ckpt", Value::dict({{"s", s}}), kOrbax);
    const Value got = load(dir / "ckpt");
    CHECK(got.at("s").as_array() ==
          Array::copy(DType::kInt64, {8, 6}, all.data()));
    std::vector<std::string> keys;
    std::string zarr_json;
    pytree::ocdbt::Database db((dir / "ckpt" / "state").string(), "test");
    db.for_each([&](const std::string& key, const pytree::ocdbt::LeafEntry& e,
                    const pytree::ocdbt::DataFile*) {
      if (key == "s/zarr.json") {
        zarr_json = e.value;
      } else {
        keys.push_back(key);
      }
    });
    CHECK(keys == split.chunk_keys);
    CHECK(nlohmann::json::parse(zarr_json)
              .at("chunk_grid")
              .at("configuration")
              .at("chunk_shape") == split.chunk);
  }
}

TEST_CASE("storage orbax: its files are under the checkpoint's checksums",
          "[pytree][orbax]") {
  TempDir dir;
  save_with(dir / "ckpt", mixed_tree(), kOrbax);
  CHECK(load(dir / "ckpt") == mixed_tree());
  // Flip one byte of the big array's chunk in the process's value file.
  fs::path value_file;
  uintmax_t largest = 0;
  for (const auto& e : fs::directory_iterator(dir / "ckpt" / "state" /
                                              "ocdbt.process_0" / "d")) {
    if (e.file_size() > largest) {
      largest = e.file_size();
      value_file = e.path();
    }
  }
  REQUIRE(largest > 1000);
  {
    std::fstream f(value_file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(largest / 2));
    char c = 0;
    f.read(&c, 1);
    f.seekp(static_cast<std::streamoff>(largest / 2));
    c = static_cast<char>(c ^ 0x40);
    f.write(&c, 1);
  }
  try {
    load(dir / "ckpt");
    FAIL("a damaged value file loaded");
  } catch (const DataLossError& e) {
    CHECK_THAT(e.what(), Catch::Contains(value_file.filename().string()));
  }
}

TEST_CASE("storage orbax: what it cannot name or compress is refused",
          "[pytree][orbax]") {
  TempDir dir;
  auto refused = [&](const Value& tree, const nlohmann::json& options,
                     const std::string& text) {
    INFO(text);
    static int n = 0;
    try {
      save_tree(dir / ("t" + std::to_string(++n)), tree, options);
      FAIL("saved");
    } catch (const InvalidArgumentError& e) {
      CHECK_THAT(e.what(), Catch::Contains(text));
    }
  };
  const Value one = Array::from<float>({1.0f}, {1});
  refused(Value::dict({{"a.b", one}, {"a", Value::dict({{"b", one}})}}), kOrbax,
          "both become Orbax's parameter name 'a.b'");
  refused(Value::dict({{"x/y", one}}), kOrbax, "holds '/'");
  refused(one, kOrbax, "not a bare leaf");
  refused(Value::dict({{"a", one}}),
          {{"storage", "orbax"}, {"compression", "gzip"}},
          "compresses with zstd");
  refused(Value::dict({{"a", one}}), {{"compression", "zstd"}},
          "zstd compression is for");
  refused(Value::dict({{"a", one}}), {{"storage", "tar"}}, "unknown storage");
}
