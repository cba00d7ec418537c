// The pytree's tree index (_TREE_INDEX): what a save writes agrees with
// _METADATA, loads read the tree from it alone, and a damaged or crafted
// index is a data-loss error naming it, never a crash or wrong structure.
#include <ckpt/checkpoint.h>
#include <ckpt/errors.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "plugins/pytree/pytree_test_util.h"
#include "records/tree_index.h"
#include "test_util.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

using namespace ckpt;
using namespace ckpt::test;
using ckpt::pytree::LeafRecord;
using ckpt::pytree::TreeMetadata;

namespace {

// Every kind of leaf: arrays of their own and packed, scalars, strings,
// none, empty containers, nested lists and dicts.
Value sample_tree() {
  return Value::dict(
      {{"big", sample_array(DType::kFloat32, 1, {512, 256})},
       {"small", sample_array(DType::kInt32, 2, {3})},
       {"half", sample_array(DType::kBFloat16, 3, {4})},
       {"layers", Value::list({sample_array(DType::kInt8, 4, {2}),
                               Value::dict({{"b", sample_array(DType::kBool, 5,
                                                               {2, 2})}})})},
       {"step", Value(int64_t{-7})},
       {"lr", 0.25},
       {"on", true},
       {"name", "run \"7\" \xc3\xa9"},
       {"nothing", Value()},
       {"empty", Value::dict()},
       {"none_yet", Value::list()}});
}

std::string load_error(const fs::path& dir, ErrorKind expected,
                       const Value* abstract_value = nullptr,
                       const nlohmann::json& options = {}) {
  try {
    load_tree(dir, abstract_value,
              options.is_null() ? nlohmann::json::object() : options);
  } catch (const Error& e) {
    CHECK(std::string(error_kind_name(e.kind())) ==
          std::string(error_kind_name(expected)));
    CHECK_THAT(e.what(), Catch::Contains("'state'"));
    return e.what();
  }
  FAIL("expected an error");
  return "";
}

TreeMetadata index_of(const fs::path& dir) {
  return ckpt::pytree::decode_tree_index(read_text(dir / "_TREE_INDEX"),
                                         "_TREE_INDEX");
}

// Whether `a` (from the index) and `b` (from format-3 _METADATA, which
// records no storage or checksums) describe the same leaf.
void check_same_leaf(const LeafRecord& a, const LeafRecord& b) {
  INFO(ckpt::pytree::key_path_repr(a.path));
  REQUIRE(a.path.size() == b.path.size());
  for (size_t i = 0; i < a.path.size(); ++i) {
    CHECK(a.path[i].key == b.path[i].key);
    CHECK(a.path[i].type == b.path[i].type);
  }
  CHECK(a.kind == b.kind);
  CHECK(a.value_type == b.value_type);
  CHECK(a.dtype == b.dtype);
  CHECK(a.shape == b.shape);
  CHECK(a.has_value == b.has_value);
  CHECK(a.bool_value == b.bool_value);
  CHECK(a.int_value == b.int_value);
  CHECK(a.double_value == b.double_value);
  CHECK(a.string_value == b.string_value);
}

}  // namespace

TEST_CASE("a saved tree's _TREE_INDEX records what its _METADATA records",
          "[pytree][index]") {
  TempDir dir;
  save_tree(dir / "state", sample_tree(), {{"pack_threshold_bytes", 64}});
  const TreeMetadata index = index_of(dir / "state");
  const TreeMetadata json = ckpt::pytree::parse_tree_metadata(
      read_text(dir / "state" / "_METADATA"), "_METADATA");
  CHECK(index.format == 3);
  CHECK(json.format == 3);
  CHECK(index.storage_format == json.storage_format);
  CHECK(index.array_file == json.array_file);
  REQUIRE(index.leaves.size() == json.leaves.size());
  for (size_t i = 0; i < index.leaves.size(); ++i) {
    check_same_leaf(index.leaves[i], json.leaves[i]);
  }
  REQUIRE(index.has_structure);
  CHECK_FALSE(json.has_structure);
  // As format 2 (what ckpt wrote before the index), _METADATA holds the
  // index's record whole.
  TreeMetadata as_2 = index;
  as_2.format = 2;
  const TreeMetadata json_2 = ckpt::pytree::parse_tree_metadata(
      ckpt::pytree::format_tree_metadata(as_2), "_METADATA");
  CHECK(json_2.structure.size == index.structure.size);
  CHECK(json_2.structure.xxh3 == index.structure.xxh3);
  for (size_t i = 0; i < index.leaves.size(); ++i) {
    const LeafRecord& a = index.leaves[i];
    const LeafRecord& b = json_2.leaves[i];
    check_same_leaf(a, b);
    CHECK(a.location.dataset == b.location.dataset);
    CHECK(a.location.packed == b.location.packed);
    CHECK(a.location.offset == b.location.offset);
    CHECK(a.has_checksum == b.has_checksum);
    CHECK(a.xxh3 == b.xxh3);
  }
  // Written back, the index is the same bytes.
  CHECK(ckpt::pytree::encode_tree_index(index) ==
        read_text(dir / "state" / "_TREE_INDEX"));
}

TEST_CASE("loads and metadata read the tree from _TREE_INDEX alone",
          "[pytree][index]") {
  TempDir dir;
  const Value tree = sample_tree();
  save_tree(dir / "state", tree);
  // _METADATA is the record in Orbax's shape for other readers; without it
  // (the handler alone: the core's checksums would refuse the folder) the
  // tree still loads.
  fs::remove(dir / "state" / "_METADATA");
  CHECK(load_tree(dir / "state") == tree);
  CHECK(tree_metadata(dir / "state").at("big").as_array_spec() ==
        ArraySpec{DType::kFloat32, {512, 256}});
}

TEST_CASE("every truncation of _TREE_INDEX is a data-loss error naming it",
          "[pytree][index]") {
  TempDir dir;
  save_tree(dir / "state", sample_tree());
  const std::string pristine = read_text(dir / "state" / "_TREE_INDEX");
  for (size_t n = 0; n < pristine.size(); ++n) {
    INFO(n << " of " << pristine.size() << " bytes");
    write_text(dir / "state" / "_TREE_INDEX", pristine.substr(0, n));
    CHECK_THAT(load_error(dir / "state", ErrorKind::kDataLoss),
               Catch::Contains("_TREE_INDEX is damaged"));
  }
  // And bytes after its end.
  write_text(dir / "state" / "_TREE_INDEX", pristine + "x");
  CHECK_THAT(load_error(dir / "state", ErrorKind::kDataLoss),
             Catch::Contains("after the end"));
}

TEST_CASE(
    "a flipped bit anywhere in _TREE_INDEX loads or is a ckpt error, never "
    "a crash; through the core it is always data loss",
    "[pytree][index]") {
  TempDir dir;
  const Value tree = sample_tree();
  save_tree(dir / "state", tree);
  const std::string pristine = read_text(dir / "state" / "_TREE_INDEX");
  size_t errors = 0;
  for (size_t at = 0; at < pristine.size(); ++at) {
    for (int bit : {0, 3, 7}) {
      std::string bytes = pristine;
      bytes[at] = static_cast<char>(bytes[at] ^ (1 << bit));
      write_text(dir / "state" / "_TREE_INDEX", bytes);
      try {
        (void)load_tree(dir / "state");
        (void)tree_metadata(dir / "state");
      } catch (const Error&) {
        ++errors;
      }
    }
  }
  // Most flips are caught by the index's own checks or the arrays'.
  CHECK(errors > pristine.size());
  // The core checks the index's checksum before the handler reads it.
  TempDir whole;
  save_checkpointables(whole / "c", {{"state", tree}});
  std::string bytes = read_text(whole / "c" / "state" / "_TREE_INDEX");
  bytes[bytes.size() / 2] ^= 1;
  write_text(whole / "c" / "state" / "_TREE_INDEX", bytes);
  CHECK_THAT(message_of<DataLossError>([&] { load(whole / "c"); }),
             Catch::Contains("_TREE_INDEX"));
}

TEST_CASE("a crafted index's structure is refused", "[pytree][index]") {
  TempDir dir;
  save_tree(dir / "state", sample_tree());
  const std::string pristine = read_text(dir / "state" / "_TREE_INDEX");
  struct Case {
    const char* what;
    void (*edit)(TreeMetadata&);
    const char* message;
  };
  const Case cases[] = {
      {"a key path twice",
       [](TreeMetadata& t) { t.leaves.push_back(t.leaves[1]); },
       "recorded twice"},
      {"a subtree split in two",
       [](TreeMetadata& t) {
         // layers/1/b moved after the scalars: "layers" reopened.
         auto it = t.leaves.begin();
         while (it->path.size() != 3) ++it;
         LeafRecord moved = *it;
         t.leaves.erase(it);
         t.leaves.push_back(moved);
       },
       "subtree is split"},
      {"a list position out of order",
       [](TreeMetadata& t) {
         leaf_at(t, {"layers", "0"}).path[1].key = "1";
       },
       "list position"},
      {"dict keys and list positions in one container",
       [](TreeMetadata& t) {
         leaf_at(t, {"layers", "0"}).path[1].type =
             ckpt::pytree::KeyType::kDict;
       },
       "both dict keys and list positions"},
      {"a root leaf among others",
       [](TreeMetadata& t) { t.leaves.back().path.clear(); }, "root leaf"},
      {"a leaf inside another leaf",
       [](TreeMetadata& t) {
         auto it = t.leaves.begin();
         while (it->path[0].key != "step") ++it;
         LeafRecord inner = *it;
         inner.path.push_back({"x", ckpt::pytree::KeyType::kDict});
         t.leaves.insert(it + 1, inner);
       },
       "inside another leaf"},
      {"an array file outside the folder",
       [](TreeMetadata& t) { t.array_file = "../arrays.h5"; },
       "plain file name"},
      {"an array without its checksum",
       [](TreeMetadata& t) { leaf_at(t, {"small"}).has_checksum = false; },
       "no xxh3 checksum"},
      {"a dataset path that is not absolute",
       [](TreeMetadata& t) { leaf_at(t, {"big"}).location.dataset = "big"; },
       "not an HDF5 path"},
      {"a rank above HDF5's",
       [](TreeMetadata& t) {
         leaf_at(t, {"small"}).shape = std::vector<int64_t>(40, 1);
       },
       "rank 40"},
      {"more elements than 2^63",
       [](TreeMetadata& t) {
         leaf_at(t, {"big"}).shape = {int64_t{1} << 62, 8};
       },
       "too large"},
      {"a packed offset past 2^63",
       [](TreeMetadata& t) {
         leaf_at(t, {"small"}).location.offset = uint64_t{1} << 63;
       },
       "dimension or offset"},
      {"a pack of two dtypes",
       [](TreeMetadata& t) {
         leaf_at(t, {"small"}).location.dataset =
             leaf_at(t, {"half"}).location.dataset;
       },
       "two dtypes"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    write_text(dir / "state" / "_TREE_INDEX", pristine);
    edit_index(dir / "state", c.edit);
    CHECK_THAT(load_error(dir / "state", ErrorKind::kDataLoss),
               Catch::Contains("_TREE_INDEX is damaged") &&
                   Catch::Contains(c.message));
  }
  // A key holding NUL could not cross the plugin ABI whole.
  write_text(dir / "state" / "_TREE_INDEX", pristine);
  edit_index(dir / "state", [](TreeMetadata& t) {
    leaf_at(t, {"step"}).path[0].key = std::string("st\0ep", 5);
  });
  CHECK_THAT(load_error(dir / "state", ErrorKind::kUnimplemented),
             Catch::Contains("_TREE_INDEX") && Catch::Contains("NUL"));
  // A newer index version is not guessed at; another file is not an index.
  std::string newer = pristine;
  newer[8] = 2;  // the version, after the 8-byte magic
  write_text(dir / "state" / "_TREE_INDEX", newer);
  CHECK_THAT(load_error(dir / "state", ErrorKind::kUnimplemented),
             Catch::Contains("index version 2"));
  write_text(dir / "state" / "_TREE_INDEX", "{\"tree_metadata\": {}}");
  CHECK_THAT(load_error(dir / "state", ErrorKind::kDataLoss),
             Catch::Contains("not a ckpt tree index"));
}

TEST_CASE(
    "what _TREE_INDEX says of the arrays is checked against the array file",
    "[pytree][index]") {
  TempDir dir;
  const Value tree = sample_tree();
  save_tree(dir / "state", tree);
  const std::string pristine = read_text(dir / "state" / "_TREE_INDEX");
  auto edited = [&](void (*edit)(TreeMetadata&)) {
    write_text(dir / "state" / "_TREE_INDEX", pristine);
    edit_index(dir / "state", edit);
  };
  // A packed array's offset outside its pack: read whole, and alone.
  edited([](TreeMetadata& t) {
    leaf_at(t, {"small"}).location.offset = 100000000;
  });
  CHECK_THAT(load_error(dir / "state", ErrorKind::kDataLoss),
             Catch::Contains("('small',)") &&
                 Catch::Contains("recorded in _TREE_INDEX"));
  Value abstract = Value::dict({{"small", ArraySpec{DType::kInt32, {3}}}});
  CHECK_THAT(load_error(dir / "state", ErrorKind::kDataLoss, &abstract,
                        {{"partial_load", true}}),
             Catch::Contains("('small',)") && Catch::Contains("arrays.h5"));
  // A shape the dataset does not have; 4 TiB the file cannot hold.
  edited([](TreeMetadata& t) { leaf_at(t, {"big"}).shape = {512, 255}; });
  CHECK_THAT(load_error(dir / "state", ErrorKind::kDataLoss),
             Catch::Contains("shape recorded in _TREE_INDEX"));
  edited([](TreeMetadata& t) {
    leaf_at(t, {"big"}).shape = {1 << 20, 1 << 20};
  });
  CHECK_THAT(load_error(dir / "state", ErrorKind::kDataLoss),
             Catch::Contains("arrays.h5"));
  // A checksum that does not match.
  edited([](TreeMetadata& t) { leaf_at(t, {"half"}).xxh3 ^= 1; });
  CHECK_THAT(
      load_error(dir / "state", ErrorKind::kDataLoss),
      Catch::Contains("('half',)") && Catch::Contains("checksum mismatch"));
  // The array file's structure record: size, checksum, and extents that
  // leave an array's bytes out (so that they count as structure).
  edited([](TreeMetadata& t) { t.structure.size += 1; });
  CHECK_THAT(load_error(dir / "state", ErrorKind::kDataLoss),
             Catch::Contains("_TREE_INDEX records"));
  edited([](TreeMetadata& t) { t.structure.xxh3 ^= 1; });
  CHECK_THAT(load_error(dir / "state", ErrorKind::kDataLoss),
             Catch::Contains("structure checksum mismatch"));
  write_text(dir / "state" / "_TREE_INDEX", pristine);
  const std::string file = read_text(dir / "state" / "arrays.h5");
  edit_index(dir / "state", [&](TreeMetadata& t) {
    // "big" (512 KiB) dropped from the extents, the checksum made to match.
    std::vector<ckpt::pytree::Extent> kept;
    for (const auto& e : t.structure.extents) {
      if (e.length != 512 * 256 * 4) kept.push_back(e);
    }
    REQUIRE(kept.size() + 1 == t.structure.extents.size());
    std::string outside;
    uint64_t pos = 0;
    for (const auto& e : kept) {
      outside += file.substr(pos, e.offset - pos);
      pos = e.offset + e.length;
    }
    outside += file.substr(pos);
    t.structure.extents = kept;
    t.structure.xxh3 = XXH3_64bits(outside.data(), outside.size());
  });
  CHECK_THAT(load_error(dir / "state", ErrorKind::kDataLoss),
             Catch::Contains("/big") &&
                 Catch::Contains("not at an array extent recorded in "
                                 "_TREE_INDEX"));
  write_text(dir / "state" / "_TREE_INDEX", pristine);
  CHECK(load_tree(dir / "state") == tree);
}
