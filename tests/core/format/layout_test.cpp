// The checkpoint layout on disk: checkpointable names, temporary folder
// names, _CHECKPOINT_METADATA and reading a checkpoint without handlers.
#include <ckpt/checkpoint.h>
#include <ckpt/errors.h>
#include <ckpt/layout.h>

#include <catch2/catch.hpp>
#include <set>

#include "format/checkpoint_metadata.h"
#include "format/names.h"
#include "test_util.h"

using namespace ckpt;
using ckpt::internal::check_checkpointable_name;
using ckpt::internal::checkpoint_metadata_json;
using ckpt::internal::is_temporary_name;
using ckpt::internal::temporary_path_for;
using ckpt::test::message_of;
using ckpt::test::TempDir;
using ckpt::test::write_text;
namespace fs = std::filesystem;

namespace {

// Why check_checkpointable_name refuses `name` (its error message).
std::string refusal(const std::string& name, bool allow_reserved = false) {
  return message_of<InvalidArgumentError>(
      [&] { check_checkpointable_name(name, allow_reserved); });
}

// A folder `dir` holding _CHECKPOINT_METADATA `json` and, when `marker`,
// the orbax.checkpoint marker.
fs::path make_checkpoint(const fs::path& dir, const std::string& json,
                         bool marker = true) {
  fs::create_directories(dir);
  write_text(dir / kCheckpointMetadataFile, json);
  if (marker) write_text(dir / kMarkerFile, "");
  return dir;
}

}  // namespace

TEST_CASE("plain names are valid checkpointable names", "[layout]") {
  CHECK_NOTHROW(check_checkpointable_name("state", false));
  CHECK_NOTHROW(check_checkpointable_name("my-item_2", false));
  CHECK_NOTHROW(check_checkpointable_name("a.b", false));
  CHECK_NOTHROW(check_checkpointable_name("x..", false));
}

TEST_CASE("empty checkpointable names are refused", "[layout]") {
  CHECK_THAT(refusal(""), Catch::Contains("may not be empty"));
  CHECK_THAT(refusal("", true), Catch::Contains("may not be empty"));
}

TEST_CASE("reserved names are refused unless reserved names are allowed",
          "[layout]") {
  CHECK_THAT(refusal("metrics"),
             Catch::Contains("reserved") && Catch::Contains("'metrics'"));
  CHECK_THAT(refusal("AUTO"), Catch::Contains("reserved"));
  CHECK_NOTHROW(check_checkpointable_name("metrics", true));
  CHECK_NOTHROW(check_checkpointable_name("AUTO", true));
  // Reserved names are matched exactly.
  CHECK_NOTHROW(check_checkpointable_name("auto", false));
  CHECK_NOTHROW(check_checkpointable_name("metrics2", false));
}

TEST_CASE("names that would escape the checkpoint folder are refused",
          "[layout]") {
  CHECK_THAT(refusal("."), Catch::Contains("escape"));
  CHECK_THAT(refusal(".."), Catch::Contains("escape"));
  CHECK_THAT(refusal("..", true), Catch::Contains("escape"));
  CHECK_THAT(refusal("a/b"), Catch::Contains("one path component"));
  CHECK_THAT(refusal("../x"), Catch::Contains("escape"));
  CHECK_THAT(refusal("/abs"), Catch::Contains("one path component"));
  CHECK_THAT(refusal("a\\b"), Catch::Contains("one path component"));
}

TEST_CASE("names with a NUL byte are refused", "[layout]") {
  CHECK_THROWS_AS(check_checkpointable_name(std::string("a\0b", 3), false),
                  InvalidArgumentError);
  CHECK_THROWS_AS(check_checkpointable_name(std::string("ab\0", 3), true),
                  InvalidArgumentError);
  // The message shows the NUL and goes on to say why.
  CHECK_THAT(message_of<InvalidArgumentError>([] {
               check_checkpointable_name(std::string("a\0b", 3), false);
             }),
             Catch::Contains("a\\0b") && Catch::Contains("NUL byte"));
}

TEST_CASE("hidden names are refused", "[layout]") {
  CHECK_THAT(refusal(".x"), Catch::Contains("hidden"));
  CHECK_THAT(refusal(".hidden", true), Catch::Contains("hidden"));
}

TEST_CASE("the names of checkpoint files are refused", "[layout]") {
  for (const char* name : {kCheckpointMetadataFile, kMarkerFile,
                           kCommitSuccessFile, kPytreeMetadataFile}) {
    INFO(name);
    CHECK_THAT(refusal(name), Catch::Contains("checkpoint file"));
    CHECK_THAT(refusal(name, true), Catch::Contains("checkpoint file"));
  }
}

TEST_CASE("temporary folder names are refused as checkpointable names",
          "[layout]") {
  CHECK_THAT(refusal("item.orbax-checkpoint-tmp-1234"),
             Catch::Contains("temporary folder"));
  CHECK_THAT(refusal("x.orbax-checkpoint-tmp"),
             Catch::Contains("temporary folder"));
}

TEST_CASE("temporary names are those containing the temporary infix",
          "[layout]") {
  CHECK(is_temporary_name("ckpt.orbax-checkpoint-tmp-17-42-0"));
  CHECK(is_temporary_name(".orbax-checkpoint-tmp"));
  CHECK(is_temporary_name("a.orbax-checkpoint-tmp.b"));
  CHECK_FALSE(is_temporary_name("ckpt"));
  CHECK_FALSE(is_temporary_name("orbax-checkpoint-tmp"));
  CHECK_FALSE(is_temporary_name("ckpt.orbax-checkpoint"));
  CHECK_FALSE(is_temporary_name(""));
}

TEST_CASE("a temporary path lies beside its final path and is temporary",
          "[layout]") {
  const fs::path final_path = "/some/where/step_100";
  const fs::path tmp = temporary_path_for(final_path);
  CHECK(tmp.parent_path() == final_path.parent_path());
  const std::string name = tmp.filename().string();
  CHECK_THAT(name, Catch::StartsWith("step_100.orbax-checkpoint-tmp-"));
  CHECK(name.size() > std::string("step_100.orbax-checkpoint-tmp-").size());
  CHECK(is_temporary_name(name));
}

TEST_CASE("temporary paths are unique across calls", "[layout]") {
  const fs::path final_path = "/ckpts/step_1";
  std::set<fs::path> seen;
  for (int i = 0; i < 200; ++i) seen.insert(temporary_path_for(final_path));
  CHECK(seen.size() == 200);
}

TEST_CASE("checkpoint metadata JSON records what the info holds", "[layout]") {
  CheckpointInfo info;
  info.item_handlers = {{"config", "json.Handler"}, {"state", "pytree"}};
  info.metrics = {{"loss", 0.25}};
  info.init_timestamp_nsecs = 5;
  const nlohmann::json j =
      nlohmann::json::parse(checkpoint_metadata_json(info));
  CHECK(j.at("item_handlers") ==
        nlohmann::json{{"config", "json.Handler"}, {"state", "pytree"}});
  CHECK(j.at("metrics") == nlohmann::json{{"loss", 0.25}});
  CHECK(j.at("performance_metrics") == nlohmann::json::object());
  CHECK(j.at("custom_metadata") == nlohmann::json::object());
  CHECK(j.at("init_timestamp_nsecs") == 5);
  // An unknown timestamp is left out, not written as null.
  CHECK_FALSE(j.contains("commit_timestamp_nsecs"));
}

TEST_CASE("checkpoint metadata round-trips through read_checkpoint_info",
          "[layout]") {
  TempDir dir;
  CheckpointInfo info;
  info.item_handlers = {{"config", "json.Handler"}, {"state", "pytree"}};
  info.metrics = {{"loss", 0.5}, {"step", 100}};
  info.performance_metrics = {{"save_seconds", 1.5}};
  info.custom_metadata = {{"run", "r1"}, {"nested", {{"k", {1, 2, 3}}}}};
  info.init_timestamp_nsecs = 1700000000123456789;
  info.commit_timestamp_nsecs = 1700000000987654321;
  const fs::path path =
      make_checkpoint(dir / "step_100", checkpoint_metadata_json(info));
  test::reseal_checksums(path);

  const CheckpointInfo back = read_checkpoint_info(path);
  CHECK(back.path == path);
  CHECK(back.layout == LayoutVersion::kV1);
  CHECK(back.item_handlers == info.item_handlers);
  CHECK(back.metrics == info.metrics);
  CHECK(back.performance_metrics == info.performance_metrics);
  CHECK(back.custom_metadata == info.custom_metadata);
  CHECK(back.init_timestamp_nsecs == info.init_timestamp_nsecs);
  CHECK(back.commit_timestamp_nsecs == info.commit_timestamp_nsecs);
}

TEST_CASE("missing timestamps and fields read back as absent or empty",
          "[layout]") {
  TempDir dir;
  const fs::path path = make_checkpoint(dir / "c", "{}");
  const CheckpointInfo info = read_checkpoint_info(path);
  CHECK(info.item_handlers.empty());
  CHECK(info.metrics == nlohmann::json::object());
  CHECK(info.custom_metadata == nlohmann::json::object());
  CHECK_FALSE(info.init_timestamp_nsecs.has_value());
  CHECK_FALSE(info.commit_timestamp_nsecs.has_value());
}

TEST_CASE("unknown top-level metadata keys fold into custom metadata",
          "[layout]") {
  TempDir dir;
  const fs::path path = make_checkpoint(
      dir / "c", R"({"item_handlers": {"a": "t"}, "custom_metadata": {"x": 1},)"
                 R"( "extra": "y", "more": [1, 2]})");
  const CheckpointInfo info = read_checkpoint_info(path);
  CHECK(info.custom_metadata ==
        nlohmann::json{{"x", 1}, {"extra", "y"}, {"more", {1, 2}}});
  REQUIRE(info.item_handlers.size() == 1);
  CHECK(info.item_handlers[0] ==
        std::make_pair(std::string("a"), std::string("t")));
}

TEST_CASE(
    "a single item handler string is a flat v0 layout only without "
    "the marker",
    "[layout]") {
  TempDir dir;
  const std::string json = R"({"item_handlers": "PyTreeHandler"})";
  const fs::path v1 = make_checkpoint(dir / "v1", json, /*marker=*/true);
  const fs::path v0 = make_checkpoint(dir / "v0", json, /*marker=*/false);

  const CheckpointInfo with_marker = read_checkpoint_info(v1);
  CHECK(with_marker.layout == LayoutVersion::kV1);
  CHECK(with_marker.typestr_of(kDefaultCheckpointableName) == "PyTreeHandler");
  CHECK(with_marker.folder_of(kDefaultCheckpointableName) ==
        v1 / kDefaultCheckpointableName);

  const CheckpointInfo flat = read_checkpoint_info(v0);
  CHECK(flat.layout == LayoutVersion::kV0Flat);
  CHECK(flat.typestr_of(kDefaultCheckpointableName) == "PyTreeHandler");
  CHECK(flat.folder_of(kDefaultCheckpointableName) == v0);
  CHECK(list_checkpointables(flat) ==
        std::vector<std::string>{kDefaultCheckpointableName});
}

TEST_CASE(
    "without the marker a checkpoint is composite v0 unless it holds "
    "a pytree at its root",
    "[layout]") {
  TempDir dir;
  const std::string json = R"({"item_handlers": {"a": "t"}})";
  const fs::path composite = make_checkpoint(dir / "composite", json, false);
  CHECK(read_checkpoint_info(composite).layout == LayoutVersion::kV0Composite);
  CHECK(read_checkpoint_info(composite).folder_of("a") == composite / "a");

  const fs::path flat = make_checkpoint(dir / "flat", "{}", false);
  write_text(flat / kPytreeMetadataFile, "{}");
  CHECK(read_checkpoint_info(flat).layout == LayoutVersion::kV0Flat);
}

TEST_CASE("reading a missing checkpoint is NotFoundError", "[layout]") {
  TempDir dir;
  const fs::path missing = dir / "nothing";
  CHECK_THAT(message_of<NotFoundError>([&] { read_checkpoint_info(missing); }),
             Catch::Contains(missing.string()));
  CHECK_THROWS_AS(list_checkpointables(missing), NotFoundError);
}

TEST_CASE("reading a file as a checkpoint is InvalidLayoutError", "[layout]") {
  TempDir dir;
  write_text(dir / "file", "x");
  CHECK_THAT(message_of<InvalidLayoutError>(
                 [&] { read_checkpoint_info(dir / "file"); }),
             Catch::Contains("not a folder") &&
                 Catch::Contains((dir / "file").string()));
}

TEST_CASE("a temporary folder is an incomplete checkpoint", "[layout]") {
  TempDir dir;
  // Complete in every file: only its name says the save never committed.
  const fs::path tmp = make_checkpoint(
      dir / "step_1.orbax-checkpoint-tmp-1-2-3", R"({"item_handlers": {}})");
  write_text(tmp / kCommitSuccessFile, "");
  CHECK_THAT(message_of<InvalidLayoutError>([&] { read_checkpoint_info(tmp); }),
             Catch::Contains("incomplete"));
  // Also when the path ends in "/" or "/.".
  for (const std::string& spelling :
       {tmp.string() + "/", tmp.string() + "/.", tmp.string() + "//./"}) {
    INFO(spelling);
    CHECK_THAT(
        message_of<InvalidLayoutError>([&] { read_checkpoint_info(spelling); }),
        Catch::Contains("incomplete"));
    CHECK_THROWS_AS(ckpt::load_checkpointables(spelling), InvalidLayoutError);
  }
}

TEST_CASE("item handlers are read in the order they were written", "[layout]") {
  TempDir dir;
  const fs::path c = make_checkpoint(
      dir / "c", R"({"item_handlers": {"state": "a.A", "config": "b.B"}})");
  const CheckpointInfo info = read_checkpoint_info(c);
  REQUIRE(info.item_handlers.size() == 2);
  CHECK(info.item_handlers[0].first == "state");
  CHECK(info.item_handlers[1].first == "config");
}

TEST_CASE("a folder without checkpoint metadata is InvalidLayoutError",
          "[layout]") {
  TempDir dir;
  fs::create_directories(dir / "c" / "state");
  write_text(dir / "c" / kMarkerFile, "");
  CHECK_THAT(
      message_of<InvalidLayoutError>([&] { read_checkpoint_info(dir / "c"); }),
      Catch::Contains(kCheckpointMetadataFile) &&
          Catch::Contains((dir / "c").string()));
}

TEST_CASE("checkpoint metadata that is no JSON object is InvalidLayoutError",
          "[layout]") {
  TempDir dir;
  const fs::path broken = make_checkpoint(dir / "broken", "{not json");
  CHECK_THAT(
      message_of<InvalidLayoutError>([&] { read_checkpoint_info(broken); }),
      Catch::Contains("not a JSON object"));
  const fs::path array = make_checkpoint(dir / "array", "[1, 2]");
  CHECK_THROWS_AS(read_checkpoint_info(array), InvalidLayoutError);
}

TEST_CASE("checkpointables are the sorted plain folders of a checkpoint",
          "[layout]") {
  TempDir dir;
  const fs::path path = make_checkpoint(dir / "c", "{}");
  for (const char* folder : {"zeta", "alpha", "mid", kMetricsName, kAutoName,
                             ".hidden", "alpha.orbax-checkpoint-tmp-9"}) {
    fs::create_directory(path / folder);
  }
  write_text(path / "plain_file", "x");

  const std::vector<std::string> expected = {"alpha", "mid", "zeta"};
  CHECK(list_checkpointables(path) == expected);
  CHECK(list_checkpointables(read_checkpoint_info(path)) == expected);
}

TEST_CASE("typestr_of finds recorded handlers only", "[layout]") {
  CheckpointInfo info;
  info.path = "/c";
  info.item_handlers = {{"a", "typeA"}, {"b", "typeB"}};
  CHECK(info.typestr_of("a") == "typeA");
  CHECK(info.typestr_of("b") == "typeB");
  CHECK_FALSE(info.typestr_of("c").has_value());
  CHECK(info.folder_of("b") == fs::path("/c/b"));
}
