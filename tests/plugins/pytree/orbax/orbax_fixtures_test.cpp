// Checkpoints written by Python Orbax (shared/fixtures/orbax): every one is
// recognised or refused clearly, as Orbax's own compatibility tests expect;
// pytrees load the arrays Orbax saved (OCDBT + zarr v3); JSON
// checkpointables load through secondary typestrs; damaged parts fail
// naming the checkpointable; none crashes and none is written to.
#include <ckpt/checkpoint.h>
#include <ckpt/context.h>
#include <ckpt/errors.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>

#include "test_util.h"

using namespace ckpt;
using namespace ckpt::test;

namespace {

fs::path fixtures_root() {
  if (const char* env = std::getenv("CKPT_ORBAX_FIXTURES")) return env;
  return fs::path(CKPT_SOURCE_ROOT) / ".." / "shared" / "fixtures" / "orbax";
}

// Every case folder: <v0|v1>_checkpoints/<kind>/<category>/<case>.
std::vector<fs::path> fixture_cases() {
  std::vector<fs::path> cases;
  for (const auto& version : fs::directory_iterator(fixtures_root())) {
    if (!version.is_directory()) continue;
    for (const auto& kind : fs::directory_iterator(version)) {
      for (const auto& category : fs::directory_iterator(kind)) {
        for (const auto& c : fs::directory_iterator(category)) {
          if (c.is_directory()) cases.push_back(c.path());
        }
      }
    }
  }
  std::sort(cases.begin(), cases.end());
  return cases;
}

std::string category_of(const fs::path& c) {
  return c.parent_path().filename().string();
}

const nlohmann::json kJsonData = {{"metadata", "json_data"}};

std::string version_of(const fs::path& c) {
  return c.parent_path().parent_path().parent_path().filename();
}

bool is_direct(const fs::path& c) {
  return c.parent_path().parent_path().filename() == "direct_checkpoint";
}

// The pytree folder of a case: `state`, or the root of a direct (flat)
// checkpoint.
fs::path pytree_folder(const fs::path& c) {
  return is_direct(c) ? c : c / "state";
}

// What the fixtures' generator (Orbax's generate_v0/v1_checkpoints.py)
// saved: {'a': int32 [0..7], 'b': {'c': int32 [1, 2, 3]}}.
void check_orbax_state(const Value& state) {
  CHECK(state.at("a").as_array() ==
        Array::from(std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  CHECK(state.at("b").at("c").as_array() ==
        Array::from(std::vector<int32_t>{1, 2, 3}));
}

// Loads the pytree of case `c` as Orbax's load would: the flat pytree of a
// direct checkpoint, else the checkpointable `state`.
Value load_state(const fs::path& c) {
  if (is_direct(c)) return load(c);
  return load_checkpointables(c, {{"state", Value()}})[0].second;
}

}  // namespace

TEST_CASE("the Orbax fixtures are present", "[orbax]") {
  INFO("fixtures expected at " << fixtures_root());
  REQUIRE(fs::is_directory(fixtures_root()));
  CHECK(fixture_cases().size() >= 40);
}

TEST_CASE(
    "Orbax v1 checkpoints without _CHECKPOINT_METADATA are invalid layouts "
    "naming the path; v0 ones are recognised without it",
    "[orbax]") {
  int v0 = 0;
  for (const fs::path& c : fixture_cases()) {
    if (category_of(c) != "checkpoint_metadata_missing") continue;
    INFO(c);
    if (version_of(c) == "v1_checkpoints") {
      const std::string message =
          message_of<InvalidLayoutError>([&] { load_checkpointables(c); });
      CHECK(message.find(c.string()) != std::string::npos);
      continue;
    }
    const CheckpointInfo info = read_checkpoint_info(c);
    const bool flat_pytree =
        is_direct(c) && c.filename() == "pytree_checkpointable_has_metadata";
    CHECK(info.layout ==
          (flat_pytree ? LayoutVersion::kV0Flat : LayoutVersion::kV0Composite));
    CHECK(info.item_handlers.empty());
    ++v0;
  }
  CHECK(v0 == 4);
}

TEST_CASE(
    "every other Orbax checkpoint is recognised with its layout and "
    "metadata",
    "[orbax]") {
  for (const fs::path& c : fixture_cases()) {
    if (category_of(c) == "checkpoint_metadata_missing") continue;
    INFO(c);
    CheckpointInfo info = read_checkpoint_info(c);
    const std::string version =
        c.parent_path().parent_path().parent_path().filename();
    const std::string kind = c.parent_path().parent_path().filename();
    if (version == "v1_checkpoints") {
      CHECK(info.layout == LayoutVersion::kV1);
    } else if (kind == "direct_checkpoint") {
      CHECK(info.layout == LayoutVersion::kV0Flat);
    } else {
      CHECK(info.layout == LayoutVersion::kV0Composite);
    }
    if (c.filename() != "missing_custom_metadata_metadata") {
      CHECK(info.custom_metadata["custom"] == "meta");
    }
    if (c.filename() != "missing_item_handlers_metadata") {
      CHECK(info.typestr_of("state").has_value());
    }
    if (c.filename() == "missing_commit_timestamp_nsecs_metadata") {
      CHECK_FALSE(info.commit_timestamp_nsecs.has_value());
    }
  }
}

TEST_CASE(
    "JSON checkpointables of Orbax checkpoints load through secondary "
    "typestrs",
    "[orbax]") {
  int loaded = 0;
  for (const fs::path& c : fixture_cases()) {
    if (category_of(c) == "checkpoint_metadata_missing") continue;
    if (!fs::is_directory(c / "metadata")) continue;
    if (c.filename() == "missing_item_handlers_metadata") continue;  // below
    INFO(c);
    auto out = load_checkpointables(c, {{"metadata", Value()}});
    REQUIRE(out.size() == 1);
    CHECK(out[0].second.as_json() == kJsonData);
    ++loaded;
  }
  CHECK(loaded >= 15);
}

TEST_CASE(
    "without recorded handlers an Orbax JSON checkpointable loads with "
    "a handler bound to its name",
    "[orbax]") {
  const fs::path c =
      fixtures_root() / "v1_checkpoints" / "composite_checkpoint" /
      "non_critical_metadata_alterations" / "missing_item_handlers_metadata";
  ContextOptions o;
  o.checkpointables_options = CheckpointablesOptions::create_with_handlers(
      {{"metadata", make_handler("ckpt.json.JsonHandler")}});
  Context context(o);
  CHECK(load_checkpointables(c, {{"metadata", Value()}})[0].second.as_json() ==
        kJsonData);
}

TEST_CASE(
    "every Orbax pytree Orbax's tests expect to load loads the arrays "
    "Orbax saved",
    "[orbax]") {
  int loaded = 0;
  for (const fs::path& c : fixture_cases()) {
    const std::string category = category_of(c);
    if (category.rfind("critical", 0) == 0) continue;  // below
    if (!fs::exists(pytree_folder(c) / "_METADATA")) continue;
    if (version_of(c) == "v1_checkpoints" &&
        category == "checkpoint_metadata_missing") {
      continue;  // an invalid layout (above)
    }
    INFO(c);
    check_orbax_state(load_state(c));
    ++loaded;
  }
  // 8 non-critical alterations x 3 layouts, and the pytree with _METADATA
  // of each layout with _CHECKPOINT_METADATA (3) and of v0's without (2).
  CHECK(loaded == 29);
}

TEST_CASE(
    "an Orbax pytree's metadata has each array's dtype and shape from its "
    "zarr.json",
    "[orbax]") {
  const fs::path c = fixtures_root() / "v1_checkpoints" /
                     "composite_checkpoint" / "checkpoint_metadata_present" /
                     "pytree_checkpointable_has_metadata";
  const Value state = metadata(c, "state").metadata;
  CHECK(state.at("a").as_array_spec() == ArraySpec{DType::kInt32, {8}});
  CHECK(state.at("b").at("c").as_array_spec() == ArraySpec{DType::kInt32, {3}});
}

TEST_CASE(
    "Orbax pytrees without their OCDBT database fail to load, naming the "
    "checkpointable, and their metadata still loads",
    "[orbax]") {
  int critical = 0;
  for (const fs::path& c : fixture_cases()) {
    if (category_of(c) != "critical_metadata_alterations") continue;
    INFO(c);
    const std::string message =
        message_of<DataLossError>([&] { load_state(c); });
    CHECK(message.find(is_direct(c) ? "pytree checkpointable" : "'state'") !=
          std::string::npos);
    CHECK(message.find(c.filename() == "missing_pytree_data_dir_d"
                           ? "/d/"
                           : "manifest.ocdbt") != std::string::npos);
    // Metadata: _METADATA's write_shape, the dtype unknown.
    const Value state =
        metadata(c, is_direct(c) ? std::string(kAutoName) : "state").metadata;
    CHECK(state.at("a").as_array_spec() == ArraySpec{std::nullopt, {8}});
    if (!is_direct(c)) {
      bool listed = false;
      for (const auto& [name, value] : checkpointables_metadata(c).metadata) {
        listed |= name == "state" && value.kind() == Value::Kind::kDict;
      }
      CHECK(listed);
    }
    ++critical;
  }
  CHECK(critical == 6);
}

TEST_CASE("an Orbax pytree without _METADATA is refused, naming it",
          "[orbax]") {
  for (const fs::path& c : fixture_cases()) {
    if (c.filename() != "pytree_checkpointable_missing_metadata") continue;
    if (version_of(c) == "v1_checkpoints" &&
        category_of(c) == "checkpoint_metadata_missing") {
      continue;
    }
    INFO(c);
    CHECK_THROWS_AS(load_state(c), Error);
  }
}

TEST_CASE(
    "a damaged file of an Orbax fixture's pytree is an error naming the "
    "checkpointable, never a crash or wrong values",
    "[orbax][integrity]") {
  const fs::path source =
      fixtures_root() / "v1_checkpoints" / "composite_checkpoint" /
      "checkpoint_metadata_present" / "pytree_checkpointable_has_metadata";
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(source / "state")) {
    if (e.is_regular_file()) {
      files.push_back(fs::relative(e.path(), source / "state").string());
    }
  }
  REQUIRE(files.size() >= 8);
  for (const std::string& file : files) {
    if (file == "_METADATA") continue;  // hostile_input_test covers it
    for (const char* damage : {"truncate", "flip", "delete"}) {
      DYNAMIC_SECTION(file << ": " << damage) {
        TempDir dir;
        fs::copy(source, dir / "c", fs::copy_options::recursive);
        const fs::path target = dir / "c" / "state" / file;
        const auto size = fs::file_size(target);
        if (std::string(damage) == "truncate") {
          fs::resize_file(target, size / 2);
        } else if (std::string(damage) == "flip") {
          std::fstream f(target,
                         std::ios::in | std::ios::out | std::ios::binary);
          f.seekg(static_cast<std::streamoff>(size / 2));
          char b = 0;
          f.read(&b, 1);
          b = static_cast<char>(b ^ 0x04);
          f.seekp(static_cast<std::streamoff>(size / 2));
          f.write(&b, 1);
        } else {
          fs::remove(target);
        }
        try {
          // Files the root database does not refer to (the per-process
          // sub-database, whose values the root holds inline) may be
          // damaged: the load is then right.
          check_orbax_state(load_state(dir / "c"));
        } catch (const Error& e) {
          INFO(e.what());
          CHECK(std::string(e.what()).find("'state'") != std::string::npos);
        }
      }
    }
  }
}

TEST_CASE(
    "a checkpointable added to an Orbax checkpoint without a recorded "
    "handler fails to load, named",
    "[orbax]") {
  const fs::path c = fixtures_root() / "v1_checkpoints" /
                     "composite_checkpoint" / "critical_general_alterations" /
                     "dummy_checkpointable_added";
  try {
    load_checkpointables(c, {{"dummy", Value()}});
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("'dummy'") != std::string::npos);
  }
  // The other parts are untouched by that failure.
  CHECK(load_checkpointables(c, {{"metadata", Value()}})[0].second.as_json() ==
        kJsonData);
}

TEST_CASE(
    "a checkpointable recorded but deleted from an Orbax checkpoint is "
    "not listed",
    "[orbax]") {
  const fs::path c =
      fixtures_root() / "v1_checkpoints" / "composite_checkpoint" /
      "non_critical_general_alterations" / "deleted_checkpointable";
  CHECK(list_checkpointables(c) == std::vector<std::string>{"metadata"});
  CHECK_THROWS_AS(load_checkpointables(c, {{"state", Value()}}), NotFoundError);
}
