// The pytree plugin: round trips, _METADATA's shape, and each pytree rule of
// ORBAX_SEMANTICS.md, through the handler itself.
#include <ckpt/errors.h>
#include <ckpt/handler.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <complex>
#include <limits>

#include "plugins/pytree/pytree_test_util.h"
#include "test_util.h"

using namespace ckpt;
using namespace ckpt::test;

namespace {

const std::vector<DType> kAllDTypes = all_dtypes();

Value all_dtypes_tree() {
  Value tree = Value::dict();
  int seed = 0;
  for (DType d : kAllDTypes) {
    tree.set(std::string(dtype_name(d)), sample_array(d, ++seed));
  }
  return tree;
}

nlohmann::json metadata_json(const fs::path& dir) {
  return nlohmann::json::parse(read_text(dir / "_METADATA"));
}

const nlohmann::json& entry(const nlohmann::json& metadata,
                            const std::string& repr) {
  return metadata.at("tree_metadata").at(repr);
}

}  // namespace

TEST_CASE("every dtype round-trips, packed and in its own dataset",
          "[pytree]") {
  Value tree = all_dtypes_tree();
  for (int threshold : {0, 1 << 20}) {
    INFO("pack threshold " << threshold);
    TempDir dir;
    save_tree(dir / "state", tree, {{"pack_threshold_bytes", threshold}});
    CHECK(load_tree(dir / "state") == tree);
    ckpt::pytree::TreeMetadata index = read_index(dir / "state");
    CHECK(leaf_at(index, {"float32"}).location.packed == (threshold > 0));
  }
}

TEST_CASE("0-d, zero-size and strided arrays round-trip", "[pytree]") {
  std::vector<double> base = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  // Every other column of a 3x4 matrix: shape [3, 2], strides [4, 2].
  Array strided = Array::borrow(DType::kFloat64, {3, 2}, base.data(), {4, 2});
  Value tree = Value::dict({
      {"scalar", Array::from<float>({42.5f}, {})},
      {"empty", Array::zeros(DType::kInt32, {0, 3})},
      {"empty_1d", Array::zeros(DType::kFloat64, {0})},
      {"strided", strided},
  });
  for (int threshold : {0, 1 << 20}) {
    TempDir dir;
    save_tree(dir / "state", tree, {{"pack_threshold_bytes", threshold}});
    Value loaded = load_tree(dir / "state");
    CHECK(loaded.at("scalar").as_array().shape().empty());
    CHECK(loaded.at("scalar").as_array().to_vector<float>() ==
          std::vector<float>{42.5f});
    CHECK(loaded.at("empty").as_array().shape() == Shape{0, 3});
    CHECK(loaded.at("empty_1d").as_array().shape() == Shape{0});
    CHECK(loaded.at("strided").as_array().to_vector<double>() ==
          std::vector<double>{1, 3, 5, 7, 9, 11});
  }
}

TEST_CASE("scalars, strings, none and empty containers round-trip",
          "[pytree]") {
  Value tree = Value::dict({
      {"yes", true},
      {"big", std::numeric_limits<int64_t>::max()},
      {"small", std::numeric_limits<int64_t>::min()},
      {"pi", 3.141592653589793},
      {"inf", std::numeric_limits<double>::infinity()},
      {"name", "Größe — 大きさ"},
      {"nothing", Value()},
      {"empty_dict", Value::dict()},
      {"nested", Value::dict({{"empty_list", Value::list()},
                              {"list", Value::list({1, "two", Value(),
                                                    Value::dict()})}})},
      {"w", Array::from<float>({1, 2, 3})},
  });
  TempDir dir;
  save_tree(dir / "state", tree);
  Value loaded = load_tree(dir / "state");
  CHECK(loaded == tree);
  // Key order is kept.
  CHECK(loaded.as_dict()[0].first == "yes");
  CHECK(loaded.as_dict().back().first == "w");
  Value nan_tree = Value::dict({{"nan", std::nan("")}});
  save_tree(dir / "nan", nan_tree);
  CHECK(std::isnan(load_tree(dir / "nan").at("nan").as_double()));
}

TEST_CASE(
    "keys with slashes, dots, spaces, unicode and the reserved prefix "
    "round-trip and keep their true key in _METADATA",
    "[pytree]") {
  Value tree = Value::dict({
      {"a/b", Array::from<int32_t>({1, 2})},
      {"a.b", Array::from<int32_t>({3, 4})},
      {".", Array::from<int32_t>({5})},
      {"", Array::from<int32_t>({6})},
      {"with space", Value::dict({{"ünï ☃", Array::from<int32_t>({7})}})},
      {"_ckpt_index", Array::from<int32_t>({8})},
      {"100%", Array::from<int32_t>({9})},
      {"quote'", 1},
  });
  for (int threshold : {0, 1 << 20}) {
    TempDir dir;
    save_tree(dir / "state", tree, {{"pack_threshold_bytes", threshold}});
    CHECK(load_tree(dir / "state") == tree);
    auto m = metadata_json(dir / "state");
    auto keys = entry(m, "('with space', 'ünï ☃')").at("key_metadata");
    CHECK(keys[1].at("key") == "ünï ☃");
    CHECK(keys[1].at("key_type") == 2);
    CHECK(entry(m, "('a/b',)").at("key_metadata")[0].at("key") == "a/b");
    CHECK(m.at("tree_metadata").contains("(\"quote'\",)"));
  }
}

TEST_CASE(
    "keys and strings with control characters and quotes round-trip; ones "
    "that are not UTF-8 are refused before anything is written",
    "[pytree]") {
  Value tree = Value::dict({
      {"tab\there \"quoted\" back\\slash \x01\x1f\x7f",
       Array::from<int32_t>({1})},
      {"text", "line\nbreak \x02 \"q\" \\"},
  });
  TempDir dir;
  save_tree(dir / "state", tree);
  CHECK(load_tree(dir / "state") == tree);
  auto m = metadata_json(dir / "state");  // it is JSON
  CHECK(m.at("tree_metadata").size() == 2);
  for (const char* bad :
       {"\xff", "a\xc3", "\xed\xa0\x80", "\xc0\xaf", "\xf4\x90\x80\x80"}) {
    INFO(bad);
    TempDir other;
    CHECK_THROWS_WITH(
        save_tree(other / "state", Value::dict({{bad, 1}})),
        Catch::Contains("not valid UTF-8") && Catch::Contains("key path"));
    CHECK_THROWS_WITH(
        save_tree(other / "text", Value::dict({{"s", std::string(bad)}})),
        Catch::Contains("not valid UTF-8") && Catch::Contains("('s',)"));
    CHECK(!fs::exists(other / "state" / "_METADATA"));
  }
  TempDir fine;
  save_tree(fine / "state",
            Value::dict({{"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 1}}));
  CHECK(load_tree(fine / "state").as_dict()[0].first ==
        "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
}

TEST_CASE("an empty root is rejected", "[pytree]") {
  TempDir dir;
  CHECK_THROWS_AS(save_tree(dir / "a", Value::dict()), InvalidArgumentError);
  CHECK_THROWS_AS(save_tree(dir / "b", Value::list()), InvalidArgumentError);
}

TEST_CASE(
    "_METADATA has Orbax's shape plus dtype and shape; storage and "
    "checksums are in _TREE_INDEX",
    "[pytree]") {
  TempDir dir;
  Value tree = Value::dict({
      {"params", Value::dict({{"w", Array::zeros(DType::kBFloat16, {4, 5})}})},
      {"layers", Value::list({Array::zeros(DType::kInt8, {2})})},
      {"step", 7},
      {"note", "hi"},
  });
  save_tree(dir / "state", tree, {{"pack_threshold_bytes", 16}});
  auto m = metadata_json(dir / "state");
  CHECK(m.at("use_ocdbt") == false);
  CHECK(m.at("ckpt_storage_format") == "ckpt.hdf5.v2");
  CHECK(m.at("ckpt_pytree_format") == 3);
  auto w = entry(m, "('params', 'w')");
  CHECK(w.at("key_metadata") == nlohmann::json::parse(
                                    R"([{"key": "params", "key_type": 2},
                                        {"key": "w", "key_type": 2}])"));
  auto v = w.at("value_metadata");
  CHECK(v.at("value_type") == "np.ndarray");
  CHECK(v.at("skip_deserialize") == false);
  CHECK(v.at("write_shape") == nlohmann::json({4, 5}));
  CHECK(v.at("dtype") == "bfloat16");
  CHECK(v.at("shape") == nlohmann::json({4, 5}));
  CHECK_FALSE(v.contains("storage"));
  CHECK_FALSE(v.contains("xxh3"));
  CHECK_FALSE(m.contains("ckpt_array_file_structure"));
  auto layer = entry(m, "('layers', '0')");
  CHECK(layer.at("key_metadata")[1].at("key_type") == 1);
  CHECK(entry(m, "('step',)").at("value_metadata").at("value_type") ==
        "scalar");
  CHECK(entry(m, "('step',)").at("value_metadata").at("value") == 7);
  CHECK(entry(m, "('note',)").at("value_metadata").at("value_type") ==
        "string");
  // Where each array is, and its checksum.
  ckpt::pytree::TreeMetadata index = read_index(dir / "state");
  CHECK(index.storage_format == "ckpt.hdf5.v2");
  const ckpt::pytree::LeafRecord& pw = leaf_at(index, {"params", "w"});
  CHECK(pw.location.dataset == "/params/w");
  CHECK_FALSE(pw.location.packed);
  CHECK(pw.has_checksum);
  const ckpt::pytree::LeafRecord& l0 = leaf_at(index, {"layers", "0"});
  CHECK(l0.location.dataset == "/_ckpt_packed/int8");
  CHECK(l0.location.packed);
  CHECK(index.has_structure);
  CHECK(index.structure.size == fs::file_size(dir / "state" / "arrays.h5"));
}

TEST_CASE("is_handleable accepts trees of supported leaves only", "[pytree]") {
  auto h = pytree_handler();
  CHECK(h->is_handleable(
      Value::dict({{"w", Array::from<float>({1})}, {"s", "x"}})));
  CHECK(h->is_handleable(Value::list({1, 2.0, Value()})));
  CHECK_FALSE(h->is_handleable(Value::json({{"a", 1}})));
  CHECK_FALSE(
      h->is_handleable(Value::dict({{"p", Value::proto({"x.Y", "", ""})}})));
  CHECK_FALSE(h->is_handleable(
      Value::dict({{"spec", ArraySpec{DType::kFloat32, {2}}}})));
}

TEST_CASE(
    "is_abstract_handleable accepts specs, scalar kinds, placeholders and "
    "concrete leaves",
    "[pytree]") {
  auto h = pytree_handler();
  Value abstract = Value::dict({
      {"w", ArraySpec{DType::kFloat32, {2}}},
      {"step", Value::scalar_spec(Value::Kind::kInt)},
      {"skip", Value::placeholder()},
      {"like", Array::from<int32_t>({1, 2})},
      {"n", 3},
  });
  CHECK(h->is_abstract_handleable(abstract) == Answer::kYes);
  CHECK(h->is_abstract_handleable(Value::json_type()) == Answer::kNo);
  CHECK(h->is_abstract_handleable(Value::dict({{"j", Value::json_type()}})) ==
        Answer::kNo);
}

TEST_CASE("loading into an abstract tree casts to the requested dtypes",
          "[pytree]") {
  TempDir dir;
  Value tree = Value::dict({
      {"f", Array::from<float>({1.5f, -2.25f, 65504.0f})},
      {"i", Array::from<int64_t>({1, -2, 300})},
      {"c", Array::from<std::complex<double>>({{1, 2}, {-3, 4}})},
      {"step", 3},
  });
  save_tree(dir / "state", tree);
  Value abstract = Value::dict({
      {"f", ArraySpec{DType::kFloat16, {3}}},
      {"i", ArraySpec{DType::kFloat64, {3}}},
      {"c", ArraySpec{DType::kComplex64, {2}}},
      {"step", Value::scalar_spec(Value::Kind::kDouble)},
  });
  Value loaded = load_tree(dir / "state", &abstract);
  const Array& f = loaded.at("f").as_array();
  CHECK(f.dtype() == DType::kFloat16);
  // 1.5, -2.25 and 65504 (the largest float16) are exact in float16.
  CHECK(f.to_vector<uint16_t>() ==
        std::vector<uint16_t>{0x3e00, 0xc080, 0x7bff});
  CHECK(loaded.at("i").as_array().to_vector<double>() ==
        std::vector<double>{1, -2, 300});
  CHECK(loaded.at("c").as_array().to_vector<std::complex<float>>() ==
        std::vector<std::complex<float>>{{1, 2}, {-3, 4}});
  CHECK(loaded.at("step").kind() == Value::Kind::kDouble);
  CHECK(loaded.at("step").as_double() == 3.0);

  Value to_bf16 =
      Value::dict({{"f", ArraySpec{DType::kBFloat16, {3}}},
                   {"i", ArraySpec{DType::kInt8, {3}}},
                   {"c", ArraySpec{DType::kFloat64, {2}}},
                   {"step", Value::scalar_spec(Value::Kind::kInt)}});
  Value back = load_tree(dir / "state", &to_bf16);
  CHECK(back.at("f").as_array().to_vector<uint16_t>() ==
        std::vector<uint16_t>{0x3fc0, 0xc010, 0x4780});
  CHECK(back.at("i").as_array().to_vector<int8_t>() ==
        std::vector<int8_t>{1, -2, 44});
  CHECK(back.at("c").as_array().to_vector<double>() ==
        std::vector<double>{1, -3});
}

TEST_CASE(
    "a shape mismatch is an error unless allow_shape_mismatch pads or "
    "truncates",
    "[pytree]") {
  TempDir dir;
  save_tree(
      dir / "state",
      Value::dict({{"m", Array::from<int32_t>({1, 2, 3, 4, 5, 6}, {2, 3})}}));
  Value bigger = Value::dict({{"m", ArraySpec{DType::kInt32, {3, 2}}}});
  try {
    load_tree(dir / "state", &bigger);
    FAIL("expected a shape mismatch");
  } catch (const InvalidArgumentError& e) {
    CHECK_THAT(e.what(), Catch::Contains("('m',)") &&
                             Catch::Contains("[2, 3]") &&
                             Catch::Contains("[3, 2]"));
  }
  nlohmann::json allow = {{"allow_shape_mismatch", true}};
  Value padded = load_tree(dir / "state", &bigger, allow);
  CHECK(padded.at("m").as_array().to_vector<int32_t>() ==
        std::vector<int32_t>{1, 2, 4, 5, 0, 0});
  Value rank = Value::dict({{"m", ArraySpec{DType::kInt32, {6}}}});
  CHECK_THROWS_AS(load_tree(dir / "state", &rank, allow), InvalidArgumentError);
}

TEST_CASE("a placeholder leaf is skipped and a placeholder subtree is an error",
          "[pytree]") {
  TempDir dir;
  Array big = sample_array(DType::kFloat32, 5, {64, 64});
  save_tree(dir / "state",
            Value::dict({{"keep", Array::from<int32_t>({1}, {1})},
                         {"skip", big},
                         {"sub", Value::dict({{"x", 1}, {"y", 2}})}}),
            {{"pack_threshold_bytes", 1024}});
  // The skipped array is never read: corrupting it does not matter.
  REQUIRE(corrupt_array_in_file(dir / "state" / "arrays.h5", big));
  Value abstract = Value::dict(
      {{"keep", ArraySpec{DType::kInt32, {1}}},
       {"skip", Value::placeholder()},
       {"sub", Value::dict({{"x", Value::placeholder()},
                            {"y", Value::scalar_spec(Value::Kind::kInt)}})}});
  Value loaded = load_tree(dir / "state", &abstract);
  CHECK(loaded.at("keep").as_array().to_vector<int32_t>() ==
        std::vector<int32_t>{1});
  CHECK(loaded.at("skip").kind() == Value::Kind::kPlaceholder);
  CHECK(loaded.at("sub").at("y").as_int() == 2);

  Value subtree = Value::dict({{"keep", ArraySpec{DType::kInt32, {1}}},
                               {"skip", Value::placeholder()},
                               {"sub", Value::placeholder()}});
  try {
    load_tree(dir / "state", &subtree);
    FAIL("expected an error");
  } catch (const InvalidArgumentError& e) {
    CHECK_THAT(e.what(),
               Catch::Contains("placeholder") && Catch::Contains("('sub',)"));
  }
}

TEST_CASE(
    "keys the abstract tree leaves out are an error without partial_load, "
    "and keys the checkpoint lacks are not found",
    "[pytree]") {
  TempDir dir;
  save_tree(dir / "state", Value::dict({{"a", Array::from<float>({1}, {1})},
                                        {"b", Array::from<float>({2}, {1})}}));
  Value only_a = Value::dict({{"a", ArraySpec{DType::kFloat32, {1}}}});
  try {
    load_tree(dir / "state", &only_a);
    FAIL("expected an error");
  } catch (const InvalidArgumentError& e) {
    CHECK_THAT(e.what(),
               Catch::Contains("('b',)") && Catch::Contains("partial_load"));
  }
  Value missing = Value::dict({{"a", ArraySpec{DType::kFloat32, {1}}},
                               {"b", ArraySpec{DType::kFloat32, {1}}},
                               {"c", ArraySpec{DType::kFloat32, {1}}}});
  CHECK_THROWS_AS(load_tree(dir / "state", &missing), NotFoundError);
}

TEST_CASE(
    "partial load reads only the requested arrays and succeeds when the "
    "data of the others is corrupted",
    "[pytree]") {
  TempDir dir;
  Array wanted_big = sample_array(DType::kFloat32, 1, {128, 128});
  Array other_big = sample_array(DType::kFloat32, 2, {128, 128});
  Array wanted_small = sample_array(DType::kInt16, 3, {4});
  Array other_small = sample_array(DType::kInt16, 4, {5});
  Value tree = Value::dict(
      {{"enc", Value::dict({{"w", wanted_big}, {"b", wanted_small}})},
       {"dec", Value::dict({{"w", other_big}, {"b", other_small}})}});
  save_tree(dir / "state", tree, {{"pack_threshold_bytes", 4096}});
  fs::path file = dir / "state" / "arrays.h5";
  REQUIRE(corrupt_array_in_file(file, other_big));
  REQUIRE(corrupt_array_in_file(file, other_small));

  Value abstract = Value::dict(
      {{"enc", Value::dict({{"w", ArraySpec{DType::kFloat32, {128, 128}}},
                            {"b", ArraySpec{DType::kInt16, {4}}}})}});
  Value loaded = load_tree(dir / "state", &abstract, {{"partial_load", true}});
  CHECK(loaded.size() == 1);
  CHECK(loaded.at("enc").at("w").as_array() == wanted_big);
  CHECK(loaded.at("enc").at("b").as_array() == wanted_small);
  // Loading everything finds the damage.
  CHECK_THROWS_AS(load_tree(dir / "state"), DataLossError);
}

TEST_CASE(
    "metadata returns an abstract tree usable as the load target without "
    "reading array data",
    "[pytree]") {
  TempDir dir;
  Value tree = Value::dict({{"w", Array::zeros(DType::kBFloat16, {3, 4})},
                            {"n", 5},
                            {"s", "text"},
                            {"none", Value()},
                            {"e", Value::list()}});
  save_tree(dir / "state", tree);
  Value meta = tree_metadata(dir / "state");
  CHECK(meta.at("w").as_array_spec() == ArraySpec{DType::kBFloat16, {3, 4}});
  CHECK(meta.at("n").scalar_kind() == Value::Kind::kInt);
  CHECK(meta.at("s").scalar_kind() == Value::Kind::kString);
  CHECK(meta.at("none").is_none());
  CHECK(meta.at("e").size() == 0);
  // Without the array file metadata still works; loading does not.
  fs::rename(dir / "state" / "arrays.h5", dir / "arrays.h5.aside");
  CHECK(tree_metadata(dir / "state") == meta);
  CHECK_THROWS_AS(load_tree(dir / "state", &meta), DataLossError);
  fs::rename(dir / "arrays.h5.aside", dir / "state" / "arrays.h5");
  CHECK(load_tree(dir / "state", &meta) == tree);
}

TEST_CASE("a concrete array in the abstract tree is filled in place",
          "[pytree]") {
  TempDir dir;
  Array saved = sample_array(DType::kFloat64, 9, {300, 2});
  save_tree(dir / "state", Value::dict({{"w", saved}}));
  std::vector<double> buffer(600, -1);
  Value abstract = Value::dict(
      {{"w", Array::borrow(DType::kFloat64, {300, 2}, buffer.data())}});
  Value loaded = load_tree(dir / "state", &abstract);
  CHECK(loaded.at("w").as_array().data() == buffer.data());
  CHECK(Array::borrow(DType::kFloat64, {300, 2}, buffer.data()) == saved);
}
