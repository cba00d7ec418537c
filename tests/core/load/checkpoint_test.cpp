// The top-level calls and the on-disk layout (ORBAX_SEMANTICS.md, Top-level
// calls and Layout validation).
#include <ckpt/checkpoint.h>
#include <ckpt/context.h>
#include <ckpt/errors.h>
#include <ckpt/stateful.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "test_util.h"

using namespace ckpt;
using namespace ckpt::test;

namespace {

// A dataset iterator: its position is its state.
class Iterator : public StatefulCheckpointable {
 public:
  int64_t position = 0;
  BackgroundWork save(const fs::path& dir) override {
    int64_t snapshot = position;
    return [dir, snapshot] { std::ofstream(dir / "position.txt") << snapshot; };
  }
  BackgroundWork load(const fs::path& dir) override {
    return [this, dir] {
      std::ifstream in(dir / "position.txt");
      if (!(in >> position))
        throw DataLossError("no position in " + dir.string());
    };
  }
};

Value config() { return Value::json({{"lr", 0.01}, {"model", "tiny"}}); }

size_t entries_in(const fs::path& dir) {
  size_t n = 0;
  for (auto it = fs::directory_iterator(dir); it != fs::directory_iterator();
       ++it)
    ++n;
  return n;
}

}  // namespace

TEST_CASE("save_checkpointables writes the Orbax v1 layout", "[checkpoint]") {
  TempDir dir;
  auto it = std::make_shared<Iterator>();
  it->position = 42;
  SaveOptions options;
  options.custom_metadata = {{"run", "alpha"}};
  save_checkpointables(dir / "ckpt",
                       {{"config", config()}, {"dataset", Value::stateful(it)}},
                       options);
  const fs::path c = dir / "ckpt";
  CHECK(fs::is_regular_file(c / "_CHECKPOINT_METADATA"));
  CHECK(fs::is_regular_file(c / "orbax.checkpoint"));
  CHECK(fs::is_regular_file(c / "commit_success.txt"));
  CHECK(fs::is_regular_file(c / "config" / "data.json"));
  CHECK(fs::is_regular_file(c / "dataset" / "position.txt"));
  auto meta = nlohmann::json::parse(read_text(c / "_CHECKPOINT_METADATA"));
  CHECK(meta["item_handlers"]["config"] == "ckpt.json.JsonHandler");
  CHECK(meta["item_handlers"]["dataset"] ==
        "ckpt.StatefulCheckpointableHandler");
  CHECK(meta["custom_metadata"]["run"] == "alpha");
  CHECK(meta["init_timestamp_nsecs"].get<int64_t>() <=
        meta["commit_timestamp_nsecs"].get<int64_t>());
  // Nothing temporary is left next to it.
  CHECK(entries_in(dir.path()) == 1);
}

TEST_CASE("load_checkpointables loads by name and fills stateful instances",
          "[checkpoint]") {
  TempDir dir;
  auto it = std::make_shared<Iterator>();
  it->position = 7;
  save_checkpointables(
      dir / "c", {{"config", config()}, {"dataset", Value::stateful(it)}});
  auto restored = std::make_shared<Iterator>();
  auto out = load_checkpointables(
      dir / "c", {{"config", Value()}, {"dataset", Value::stateful(restored)}});
  REQUIRE(out.size() == 2);
  CHECK(out[0].second.as_json() == config().as_json());
  CHECK(restored->position == 7);
  CHECK(out[1].second.as_stateful() == restored);
}

TEST_CASE(
    "loading a stateful checkpointable without an instance is an "
    "invalid argument",
    "[checkpoint]") {
  TempDir dir;
  save_checkpointables(
      dir / "c", {{"dataset", Value::stateful(std::make_shared<Iterator>())}});
  auto m = message_of<InvalidArgumentError>([&] {
    load_checkpointables(dir / "c", {{"dataset", Value()}});
  });
  CHECK(m.find("'dataset'") != std::string::npos);
}

TEST_CASE("partial load touches only the requested checkpointables",
          "[checkpoint]") {
  TempDir dir;
  save_checkpointables(dir / "c",
                       {{"config", config()}, {"other", Value::json({1, 2})}});
  write_text(dir / "c" / "other" / "data.json", "{{{ corrupted");
  auto out = load_checkpointables(dir / "c", {{"config", Value()}});
  REQUIRE(out.size() == 1);
  CHECK(out[0].first == "config");
}

TEST_CASE("an empty request loads every checkpointable but the reserved ones",
          "[checkpoint]") {
  TempDir dir;
  SaveOptions options;
  options.metrics = nlohmann::json{{"loss", 0.25}};
  save_checkpointables(dir / "c",
                       {{"b", Value::json(2)}, {"a", Value::json(1)}}, options);
  CHECK(fs::is_regular_file(dir / "c" / "metrics" / "metrics"));
  auto out = load_checkpointables(dir / "c");
  REQUIRE(out.size() == 2);
  CHECK(out[0].first == "a");
  CHECK(out[1].first == "b");
  // The metrics are there for whoever asks by name, and in the metadata.
  auto metrics = load_checkpointables(dir / "c", {{"metrics", Value()}});
  CHECK(metrics[0].second.as_json()["loss"] == 0.25);
  CHECK(read_checkpoint_info(dir / "c").metrics["loss"] == 0.25);
}

TEST_CASE(
    "an unknown checkpointable is not found, listing requested and "
    "available",
    "[checkpoint]") {
  TempDir dir;
  save_checkpointables(dir / "c", {{"config", config()}});
  auto m = message_of<NotFoundError>([&] {
    load_checkpointables(dir / "c", {{"params", Value()}});
  });
  CHECK(m.find("'params'") != std::string::npos);
  CHECK(m.find("available 'config'") != std::string::npos);
}

TEST_CASE("save uses the name state and load AUTO picks it when it is a pytree",
          "[checkpoint]") {
  TempDir dir;
  Value tree = Value::dict({{"step", 3}, {"name", "run"}});
  save(dir / "p", tree);
  CHECK(fs::is_directory(dir / "p" / "state"));
  // A tree of plain scalars goes to the pytree handler (bound to `state`).
  CHECK(fs::exists(dir / "p" / "state" / "_METADATA"));
  CHECK(load(dir / "p") == tree);
  CHECK(load(dir / "p", nullptr, "state") == tree);
  // Without a pytree folder (no _METADATA), AUTO has nothing to pick.
  fs::remove(dir / "p" / "state" / "_METADATA");
  CHECK_THROWS_AS(load(dir / "p"), InvalidLayoutError);
}

TEST_CASE("saving over an existing checkpoint needs overwrite",
          "[checkpoint]") {
  TempDir dir;
  save_checkpointables(dir / "c", {{"x", Value::json(1)}});
  auto m = message_of<AlreadyExistsError>([&] {
    save_checkpointables(dir / "c", {{"x", Value::json(2)}});
  });
  CHECK(m.find("Destination") != std::string::npos);
  CHECK(m.find("already exists") != std::string::npos);
  CHECK(load_checkpointables(dir / "c")[0].second.as_json() == 1);
  SaveOptions overwrite;
  overwrite.overwrite = true;
  save_checkpointables(dir / "c", {{"y", Value::json(2)}}, overwrite);
  auto out = load_checkpointables(dir / "c");
  REQUIRE(out.size() == 1);
  CHECK(out[0].first == "y");
  CHECK(entries_in(dir.path()) == 1);  // the old one is gone, nothing left over
}

TEST_CASE(
    "reserved, empty and escaping names are rejected before anything "
    "is written",
    "[checkpoint]") {
  TempDir dir;
  for (std::string bad : {"", "metrics", "AUTO", "..", ".", "a/b", "/abs",
                          "../up", ".hidden", "_CHECKPOINT_METADATA"}) {
    INFO("name: '" << bad << "'");
    CHECK_THROWS_AS(save_checkpointables(dir / "c", {{bad, Value::json(1)}}),
                    InvalidArgumentError);
  }
  CHECK_THROWS_AS(save_checkpointables(dir / "c", {}), InvalidArgumentError);
  CHECK_THROWS_AS(save_checkpointables(dir / "c", {{"x", Value::json(1)},
                                                   {"x", Value::json(2)}}),
                  InvalidArgumentError);
  CHECK_THROWS_AS(save_checkpointables(dir / "c", {{"x", Value()}}),
                  InvalidArgumentError);
  CHECK(entries_in(dir.path()) == 0);
  save_checkpointables(dir / "ok", {{"x", Value::json(1)}});
  CHECK_THROWS_AS(load_checkpointables(dir / "ok", {{"../ok", Value()}}),
                  InvalidArgumentError);
}

TEST_CASE("a leftover temporary folder never blocks a save", "[checkpoint]") {
  TempDir dir;
  fs::create_directories(dir / "c.orbax-checkpoint-tmp-123" / "x");
  save_checkpointables(dir / "c", {{"x", Value::json(1)}});
  CHECK(load_checkpointables(dir / "c")[0].second.as_json() == 1);
}

TEST_CASE(
    "checkpoint metadata reports handlers, timestamps and custom "
    "metadata",
    "[checkpoint]") {
  TempDir dir;
  SaveOptions options;
  options.custom_metadata = {{"epoch", 4}};
  save_checkpointables(dir / "c", {{"config", config()}}, options);
  auto m = checkpointables_metadata(dir / "c");
  CHECK(m.checkpoint.layout == LayoutVersion::kV1);
  CHECK(m.checkpoint.typestr_of("config") ==
        std::string("ckpt.json.JsonHandler"));
  CHECK(m.checkpoint.custom_metadata["epoch"] == 4);
  CHECK(m.checkpoint.commit_timestamp_nsecs.has_value());
  REQUIRE(m.metadata.size() == 1);
  CHECK(m.metadata[0].second.is_none());  // json has no metadata
}

TEST_CASE("a handler bound to a name in a Context is used in that scope only",
          "[checkpoint]") {
  TempDir dir;
  {
    ContextOptions o;
    o.checkpointables_options = CheckpointablesOptions::create_with_handlers(
        {{"config", make_handler("ckpt.json.JsonHandler",
                                 {{"filename", "config.json"}})}});
    Context context(o);
    save_checkpointables(dir / "a", {{"config", config()}});
  }
  save_checkpointables(dir / "b", {{"config", config()}});
  CHECK(fs::exists(dir / "a" / "config" / "config.json"));
  CHECK(fs::exists(dir / "b" / "config" / "data.json"));
}

TEST_CASE("Context file permissions apply to what a save writes",
          "[checkpoint]") {
  TempDir dir;
  ContextOptions o;
  o.file_mode = 0600;
  o.directory_mode = 0700;
  Context context(o);
  save_checkpointables(dir / "c", {{"x", Value::json(1)}});
  auto perms = [](const fs::path& p) {
    return static_cast<unsigned>(fs::status(p).permissions()) & 0777u;
  };
  CHECK(perms(dir / "c") == 0700u);
  CHECK(perms(dir / "c" / "_CHECKPOINT_METADATA") == 0600u);
}

TEST_CASE("bad checkpoint folders are invalid layouts naming the path",
          "[checkpoint][layout]") {
  TempDir dir;
  auto invalid = [&](const fs::path& p, const std::string& why) {
    std::string m =
        message_of<InvalidLayoutError>([&] { load_checkpointables(p); });
    INFO(m);
    CHECK(m.find(p.string()) != std::string::npos);
    CHECK(m.find(why) != std::string::npos);
  };
  // A path that does not exist is not found (Orbax: FileNotFoundError).
  std::string missing =
      message_of<NotFoundError>([&] { load_checkpointables(dir / "missing"); });
  CHECK(missing.find((dir / "missing").string()) != std::string::npos);
  write_text(dir / "file", "x");
  invalid(dir / "file", "not a folder");
  fs::create_directories(dir / "c.orbax-checkpoint-tmp-9" / "x");
  write_text(dir / "c.orbax-checkpoint-tmp-9" / "_CHECKPOINT_METADATA", "{}");
  invalid(dir / "c.orbax-checkpoint-tmp-9", "incomplete checkpoint");
  fs::create_directories(dir / "plain" / "x");
  invalid(dir / "plain", "_CHECKPOINT_METADATA");
  save_checkpointables(dir / "bad", {{"x", Value::json(1)}});
  fs::copy(dir / "bad", dir / "damaged", fs::copy_options::recursive);
  strip_checksums(dir / "bad");
  fs::remove(dir / "bad" / "_CHECKPOINT_METADATA");
  write_text(dir / "bad" / "_CHECKPOINT_METADATA", "{ not json");
  invalid(dir / "bad", "not a JSON object");
  // With checksums recorded the same file is damage, named.
  fs::remove(dir / "damaged" / "_CHECKPOINT_METADATA");
  write_text(dir / "damaged" / "_CHECKPOINT_METADATA", "{ not json");
  CHECK_THAT(
      message_of<DataLossError>([&] { load_checkpointables(dir / "damaged"); }),
      Catch::Contains((dir / "damaged" / "_CHECKPOINT_METADATA").string()));
  // Nothing was written anywhere by these loads.
  CHECK(read_text(dir / "bad" / "_CHECKPOINT_METADATA") == "{ not json");
}

TEST_CASE("an unreadable _CHECKPOINT_METADATA is a clear error",
          "[checkpoint][layout]") {
  if (::geteuid() == 0) {
    // root reads everything: make it a folder instead of a file.
    TempDir dir;
    save_checkpointables(dir / "c", {{"x", Value::json(1)}});
    fs::copy(dir / "c", dir / "old", fs::copy_options::recursive);
    fs::remove(dir / "c" / "_CHECKPOINT_METADATA");
    fs::create_directory(dir / "c" / "_CHECKPOINT_METADATA");
    CHECK_THROWS_AS(load_checkpointables(dir / "c"), DataLossError);
    strip_checksums(dir / "old");
    fs::remove(dir / "old" / "_CHECKPOINT_METADATA");
    fs::create_directory(dir / "old" / "_CHECKPOINT_METADATA");
    CHECK_THROWS_AS(load_checkpointables(dir / "old"), InvalidLayoutError);
    return;
  }
  TempDir dir;
  save_checkpointables(dir / "c", {{"x", Value::json(1)}});
  fs::permissions(dir / "c" / "_CHECKPOINT_METADATA", fs::perms::none);
  CHECK_THROWS_AS(load_checkpointables(dir / "c"), PermissionDeniedError);
}

TEST_CASE(
    "optional _CHECKPOINT_METADATA fields may be missing and unknown "
    "keys fold into custom metadata",
    "[checkpoint][layout]") {
  TempDir dir;
  save_checkpointables(dir / "c", {{"x", Value::json(1)}});
  strip_checksums(dir / "c");
  fs::remove(dir / "c" / "_CHECKPOINT_METADATA");
  write_text(
      dir / "c" / "_CHECKPOINT_METADATA",
      R"({"item_handlers": {"x": "ckpt.json.JsonHandler"}, "extra": 5})");
  auto info = read_checkpoint_info(dir / "c");
  CHECK_FALSE(info.init_timestamp_nsecs.has_value());
  CHECK(info.custom_metadata["extra"] == 5);
  CHECK(load_checkpointables(dir / "c")[0].second.as_json() == 1);
}

TEST_CASE("a handler error is reported as failed to load the checkpointable",
          "[checkpoint]") {
  TempDir dir;
  save_checkpointables(dir / "c", {{"config", config()}});
  strip_checksums(dir / "c");
  write_text(dir / "c" / "config" / "data.json", "[1, 2");
  auto m = message_of<DataLossError>([&] { load_checkpointables(dir / "c"); });
  CHECK(m.find("failed to load checkpointable 'config'") != std::string::npos);
}
