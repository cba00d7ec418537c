// The pytree plugin on damaged checkpoints and Orbax-written pytrees: every
// failure is a clear error naming the checkpointable (and the key path where
// there is one), never a crash.
#include <ckpt/errors.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

#include "plugins/pytree/pytree_test_util.h"
#include "records/tree_index.h"
#include "test_util.h"

using namespace ckpt;
using namespace ckpt::test;

namespace {

Value sample_tree() {
  return Value::dict({{"big", sample_array(DType::kFloat32, 1, {512, 256})},
                      {"small", sample_array(DType::kInt32, 2, {3})}});
}

void edit_metadata(const fs::path& dir, const std::string& from,
                   const std::string& to) {
  std::string text = read_text(dir / "_METADATA");
  size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  text.replace(at, from.size(), to);
  write_text(dir / "_METADATA", text);
}

std::string load_error(
    const fs::path& dir, ErrorKind expected,
    const nlohmann::json& options = nlohmann::json::object()) {
  try {
    load_tree(dir, nullptr, options);
  } catch (const Error& e) {
    CHECK(e.kind() == expected);
    CHECK_THAT(e.what(), Catch::Contains("'state'"));
    return e.what();
  }
  FAIL("expected an error");
  return "";
}

fs::path orbax_fixtures() {
  if (const char* env = std::getenv("CKPT_ORBAX_FIXTURES")) return env;
  return fs::path(CKPT_SOURCE_ROOT) / ".." / "shared" / "fixtures" / "orbax";
}

}  // namespace

TEST_CASE(
    "a checksum mismatch is detected, and verify_checksums false skips it",
    "[pytree][errors]") {
  Value tree = sample_tree();
  for (const char* damaged : {"big", "small"}) {
    TempDir dir;
    save_tree(dir / "state", tree);
    REQUIRE(corrupt_array_in_file(dir / "state" / "arrays.h5",
                                  tree.at(damaged).as_array()));
    std::string message = load_error(dir / "state", ErrorKind::kDataLoss);
    CHECK_THAT(message,
               Catch::Contains("checksum") &&
                   Catch::Contains(std::string("('") + damaged + "',)"));
    Value loaded =
        load_tree(dir / "state", nullptr, {{"verify_checksums", false}});
    CHECK(loaded.at(damaged).as_array() != tree.at(damaged).as_array());
  }
}

TEST_CASE("a truncated array file is a data-loss error", "[pytree][errors]") {
  TempDir dir;
  save_tree(dir / "state", sample_tree());
  fs::path file = dir / "state" / "arrays.h5";
  fs::resize_file(file, fs::file_size(file) / 2);
  load_error(dir / "state", ErrorKind::kDataLoss);
  fs::resize_file(file, 100);
  load_error(dir / "state", ErrorKind::kDataLoss);
}

TEST_CASE("an array file that is not HDF5 is a data-loss error",
          "[pytree][errors]") {
  TempDir dir;
  save_tree(dir / "state", sample_tree());
  std::string garbage(fs::file_size(dir / "state" / "arrays.h5"), '\x17');
  write_text(dir / "state" / "arrays.h5", garbage);
  CHECK_THAT(load_error(dir / "state", ErrorKind::kDataLoss),
             Catch::Contains("arrays.h5"));
  fs::remove(dir / "state" / "arrays.h5");
  load_error(dir / "state", ErrorKind::kDataLoss);
}

TEST_CASE(
    "a dataset missing from the array file is a data-loss error naming "
    "the key path",
    "[pytree][errors]") {
  {
    TempDir dir;  // the record in _TREE_INDEX
    save_tree(dir / "state", sample_tree());
    edit_index(dir / "state", [](ckpt::pytree::TreeMetadata& t) {
      leaf_at(t, {"big"}).location.dataset = "/gone";
    });
    CHECK_THAT(load_error(dir / "state", ErrorKind::kDataLoss),
               Catch::Contains("('big',)") && Catch::Contains("/gone"));
  }
  TempDir dir;  // in _METADATA, as ckpt wrote it before format 3
  save_tree(dir / "state", sample_tree());
  as_format_2(dir / "state");
  edit_metadata(dir / "state", "\"/big\"", "\"/gone\"");
  CHECK_THAT(load_error(dir / "state", ErrorKind::kDataLoss),
             Catch::Contains("('big',)") && Catch::Contains("/gone"));
}

TEST_CASE(
    "a dataset whose type cannot hold the recorded dtype is a data-loss "
    "error",
    "[pytree][errors]") {
  {
    TempDir dir;
    save_tree(dir / "state", sample_tree());
    edit_index(dir / "state", [](ckpt::pytree::TreeMetadata& t) {
      leaf_at(t, {"big"}).dtype = CKPT_DTYPE_COMPLEX128;
    });
    CHECK_THAT(load_error(dir / "state", ErrorKind::kDataLoss),
               Catch::Contains("complex128") && Catch::Contains("('big',)") &&
                   Catch::Contains("_TREE_INDEX"));
  }
  TempDir dir;
  save_tree(dir / "state", sample_tree());
  as_format_2(dir / "state");
  edit_metadata(dir / "state", "\"float32\"", "\"complex128\"");
  CHECK_THAT(load_error(dir / "state", ErrorKind::kDataLoss),
             Catch::Contains("complex128") && Catch::Contains("('big',)"));
}

TEST_CASE("damaged or missing _METADATA and _TREE_INDEX are clear errors",
          "[pytree][errors]") {
  TempDir dir;
  save_tree(dir / "state", sample_tree());
  // Loads read the tree from _TREE_INDEX.
  const std::string index = read_text(dir / "state" / "_TREE_INDEX");
  write_text(dir / "state" / "_TREE_INDEX", index.substr(0, index.size() / 2));
  CHECK_THAT(load_error(dir / "state", ErrorKind::kDataLoss),
             Catch::Contains("_TREE_INDEX is damaged"));
  // Without it, _METADATA says it is needed.
  fs::remove(dir / "state" / "_TREE_INDEX");
  CHECK_THAT(load_error(dir / "state", ErrorKind::kDataLoss),
             Catch::Contains("_TREE_INDEX is missing"));
  // _METADATA alone (format 2).
  write_text(dir / "state" / "_TREE_INDEX", index);
  as_format_2(dir / "state");
  CHECK(load_tree(dir / "state") == sample_tree());
  write_text(dir / "state" / "_METADATA", "{\"tree_metadata\": ");
  load_error(dir / "state", ErrorKind::kInvalidLayout);
  fs::remove(dir / "state" / "_METADATA");
  CHECK_THAT(load_error(dir / "state", ErrorKind::kNotFound),
             Catch::Contains("no _METADATA"));
}

TEST_CASE("an array whose dtype the file cannot hold is refused at save",
          "[pytree][errors]") {
  // Arrays of ckpt's own dtypes always fit; a JSON document is not a leaf.
  TempDir dir;
  CHECK_THROWS_AS(
      save_tree(dir / "state", Value::dict({{"j", Value::json({1})}})),
      InvalidArgumentError);
}

TEST_CASE(
    "the metadata of Orbax-written pytrees gives their shapes and value "
    "types",
    "[pytree][orbax]") {
  int seen = 0;
  for (const auto& e : fs::recursive_directory_iterator(orbax_fixtures())) {
    if (e.path().filename() != "_METADATA") continue;
    fs::path dir = e.path().parent_path();
    if (dir.filename() == "dummy") continue;  // not a pytree (see below)
    INFO(dir);
    Value meta = tree_metadata(dir);
    CHECK(meta.at("a").as_array_spec().shape == Shape{8});
    CHECK(meta.at("b").at("c").as_array_spec().shape == Shape{3});
    ++seen;
  }
  CHECK(seen >= 30);
}

TEST_CASE(
    "an Orbax checkpointable whose _METADATA is not pytree metadata is an "
    "invalid layout",
    "[pytree][orbax]") {
  fs::path dir = orbax_fixtures() / "v1_checkpoints" / "composite_checkpoint" /
                 "critical_general_alterations" / "dummy_checkpointable_added" /
                 "dummy";
  CHECK_THROWS_AS(tree_metadata(dir), InvalidLayoutError);
  CHECK_THROWS_AS(load_tree(dir), InvalidLayoutError);
}
