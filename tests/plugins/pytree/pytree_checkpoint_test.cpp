// The pytree handler behind the top-level calls: the engine resolves it for
// `state`, passes the Context's pytree options and runs its two tiers.
#include <ckpt/checkpoint.h>
#include <ckpt/context.h>
#include <ckpt/errors.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "plugins/pytree/pytree_test_util.h"
#include "test_util.h"

using namespace ckpt;
using namespace ckpt::test;

TEST_CASE(
    "a tree saved with save() loads back with AUTO, and metadata() is "
    "its abstract tree",
    "[pytree][checkpoint]") {
  TempDir dir;
  Value tree = Value::dict(
      {{"params",
        Value::dict({{"w", sample_array(DType::kFloat32, 1, {128, 64})},
                     {"b", sample_array(DType::kFloat32, 2, {64})}})},
       {"step", 12}});
  save(dir / "ckpt", tree);
  CHECK(read_checkpoint_info(dir / "ckpt").typestr_of("state") ==
        kPyTreeTypestr);
  CHECK(load(dir / "ckpt") == tree);
  Value meta = metadata(dir / "ckpt").metadata;
  CHECK(meta.at("params").at("w").as_array_spec() ==
        ArraySpec{DType::kFloat32, {128, 64}});
  CHECK(load(dir / "ckpt", &meta) == tree);
}

TEST_CASE("the Context's pytree options reach the handler",
          "[pytree][checkpoint]") {
  TempDir dir;
  Value tree = Value::dict({{"a", sample_array(DType::kInt32, 1, {4})},
                            {"b", sample_array(DType::kInt32, 2, {4})}});
  save(dir / "ckpt", tree);
  Value only_a = Value::dict({{"a", ArraySpec{DType::kInt64, {4}}}});
  CHECK_THROWS(load(dir / "ckpt", &only_a));
  ContextOptions options;
  options.handler_options = {{"pytree", {{"partial_load", true}}}};
  Context context(options);
  Value loaded = load(dir / "ckpt", &only_a);
  REQUIRE(loaded.size() == 1);
  CHECK(loaded.at("a").as_array().dtype() == DType::kInt64);
}

TEST_CASE("an async save keeps the snapshot taken before it returned",
          "[pytree][checkpoint]") {
  TempDir dir;
  std::vector<float> big(1 << 20, 1.0f), small(16, 2.0f);
  Value tree = Value::dict(
      {{"big", Array::borrow(DType::kFloat32, {1 << 20}, big.data())},
       {"small", Array::borrow(DType::kFloat32, {16}, small.data())}});
  Value expected =
      Value::dict({{"big", Array::from(std::vector<float>(1 << 20, 1.0f))},
                   {"small", Array::from(std::vector<float>(16, 2.0f))}});
  AsyncSave pending = save_async(dir / "ckpt", tree);
  std::fill(big.begin(), big.end(), -1.0f);
  std::fill(small.begin(), small.end(), -1.0f);
  pending.result();
  CHECK(load(dir / "ckpt") == expected);
}

TEST_CASE("immutable arrays are saved from the caller's memory",
          "[pytree][checkpoint]") {
  TempDir dir;
  auto data = std::make_shared<std::vector<double>>(1 << 18, 3.0);
  Value tree =
      Value::dict({{"w", Array::share(DType::kFloat64, {1 << 18}, data->data(),
                                      data, /*immutable=*/true)}});
  AsyncSave pending = save_async(dir / "ckpt", tree);
  tree = Value();  // the save keeps the memory alive
  data.reset();
  pending.result();
  CHECK(load(dir / "ckpt").at("w").as_array().to_vector<double>() ==
        std::vector<double>(1 << 18, 3.0));
}

TEST_CASE(
    "a handler instance's configuration gives defaults that the "
    "Context's options override",
    "[pytree][checkpoint]") {
  TempDir dir;
  auto packing_off =
      make_handler(kPyTreeTypestr, {{"pytree", {{"pack_threshold_bytes", 0}}}});
  Value tree = Value::dict({{"a", sample_array(DType::kInt32, 1, {4})}});
  ContextOptions options;
  options.checkpointables_options =
      CheckpointablesOptions::create_with_handlers({{"weights", packing_off}});
  {
    Context context(options);
    save_checkpointables(dir / "own", {{"weights", tree}});
  }
  options.handler_options = {{"pytree", {{"pack_threshold_bytes", 1024}}}};
  {
    Context context(options);
    save_checkpointables(dir / "packed", {{"weights", tree}});
  }
  auto dataset_of = [&](const fs::path& c) {
    ckpt::pytree::TreeMetadata index = read_index(c / "weights");
    return leaf_at(index, {"a"}).location.dataset;
  };
  CHECK(dataset_of(dir / "own") == "/a");
  CHECK(dataset_of(dir / "packed") == "/_ckpt_packed/int32");
}
