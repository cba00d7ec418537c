// Checkpoints written by Python Orbax (shared/fixtures/orbax): every one is
// recognised or refused clearly; JSON checkpointables load through
// secondary typestrs; damaged parts fail naming the checkpointable; none
// crashes and none is written to.
#include <ckpt/checkpoint.h>
#include <ckpt/context.h>
#include <ckpt/errors.h>

#include <catch2/catch.hpp>
#include <cstdlib>

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

}  // namespace

TEST_CASE("the Orbax fixtures are present", "[orbax]") {
  INFO("fixtures expected at " << fixtures_root());
  REQUIRE(fs::is_directory(fixtures_root()));
  CHECK(fixture_cases().size() >= 40);
}

TEST_CASE(
    "Orbax checkpoints without _CHECKPOINT_METADATA are invalid "
    "layouts naming the path",
    "[orbax]") {
  for (const fs::path& c : fixture_cases()) {
    if (category_of(c) != "checkpoint_metadata_missing") continue;
    INFO(c);
    try {
      load_checkpointables(c);
      FAIL("expected InvalidLayoutError");
    } catch (const InvalidLayoutError& e) {
      CHECK(std::string(e.what()).find(c.string()) != std::string::npos);
    }
  }
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
    "Orbax pytrees (OCDBT) fail to load with an error naming the "
    "checkpointable",
    "[orbax]") {
  for (const fs::path& c : fixture_cases()) {
    if (category_of(c) == "checkpoint_metadata_missing") continue;
    INFO(c);
    try {
      load_checkpointables(c, {{"state", Value()}});
      FAIL("expected an error");
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find("'state'") != std::string::npos);
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
