// The json plugin: documents round-trip, files and fallbacks as Orbax's
// JsonHandler, clear errors.
#include <ckpt/errors.h>
#include <ckpt/handler.h>

#include <catch2/catch.hpp>
#include <limits>

#include "test_util.h"

using namespace ckpt;
using namespace ckpt::test;

namespace {
HandlerPtr json_handler(nlohmann::json config = nlohmann::json::object()) {
  return make_handler("ckpt.json.JsonHandler", config);
}
}  // namespace

TEST_CASE("json round-trips unicode, nesting and large numbers", "[json]") {
  nlohmann::json doc = {
      {"name", "Größe — 大きさ — 🚀"},
      {"nested",
       {{"a", {1, 2, {{"b", nullptr}}}}, {"empty", nlohmann::json::object()}}},
      {"big", std::numeric_limits<int64_t>::max()},
      {"small", std::numeric_limits<int64_t>::min()},
      {"unsigned", std::numeric_limits<uint64_t>::max()},
      {"pi", 3.141592653589793},
      {"tiny", 5e-324},
  };
  TempDir dir;
  auto h = json_handler();
  save_with(*h, dir / "cfg", Value::json(doc));
  CHECK(fs::exists(dir / "cfg" / "data.json"));
  CHECK(load_with(*h, dir / "cfg").as_json() == doc);
}

TEST_CASE("json saves trees without arrays and refuses trees with arrays",
          "[json]") {
  auto h = json_handler();
  Value tree = Value::dict(
      {{"lr", 0.1}, {"steps", 10}, {"tags", Value::list({"a", "b"})}});
  CHECK(h->is_handleable(tree));
  CHECK(h->is_handleable(Value::json({1, 2})));
  CHECK_FALSE(
      h->is_handleable(Value::dict({{"w", Array::from<float>({1, 2})}})));
  TempDir dir;
  save_with(*h, dir / "t", tree);
  CHECK(load_with(*h, dir / "t").as_json() ==
        nlohmann::json{{"lr", 0.1}, {"steps", 10}, {"tags", {"a", "b"}}});
}

TEST_CASE("json defers on every abstract", "[json]") {
  auto h = json_handler();
  CHECK(h->is_abstract_handleable(Value::json_type()) == Answer::kDefer);
  CHECK(h->is_abstract_handleable(Value::dict()) == Answer::kDefer);
}

TEST_CASE("json writes the configured filename and loads it back", "[json]") {
  auto h = json_handler({{"filename", "config.json"}});
  TempDir dir;
  save_with(*h, dir / "c", Value::json({{"x", 1}}));
  CHECK(fs::exists(dir / "c" / "config.json"));
  CHECK_FALSE(fs::exists(dir / "c" / "data.json"));
  CHECK(load_with(*h, dir / "c").as_json() == nlohmann::json{{"x", 1}});
}

TEST_CASE("json load falls back to data.json, then metadata", "[json]") {
  auto configured = json_handler({{"filename", "config.json"}});
  TempDir dir;
  fs::create_directories(dir / "a");
  write_text(dir / "a" / "data.json", R"({"from": "data.json"})");
  CHECK(load_with(*configured, dir / "a").as_json()["from"] == "data.json");
  fs::create_directories(dir / "b");
  write_text(dir / "b" / "metadata", R"({"from": "metadata"})");
  CHECK(load_with(*configured, dir / "b").as_json()["from"] == "metadata");
}

TEST_CASE("json load without any file names the files it tried", "[json]") {
  auto h = json_handler({{"filename", "config.json"}});
  TempDir dir;
  fs::create_directories(dir / "empty");
  try {
    load_with(*h, dir / "empty");
    FAIL("expected NotFoundError");
  } catch (const NotFoundError& e) {
    std::string message = e.what();
    CHECK(message.find("config.json, data.json, metadata") !=
          std::string::npos);
  }
}

TEST_CASE("a malformed data.json is a data loss error naming the file",
          "[json]") {
  auto h = json_handler();
  TempDir dir;
  fs::create_directories(dir / "bad");
  write_text(dir / "bad" / "data.json", "{\"a\": [1, 2,\n");
  try {
    load_with(*h, dir / "bad");
    FAIL("expected DataLossError");
  } catch (const DataLossError& e) {
    std::string message = e.what();
    CHECK(message.find("data.json") != std::string::npos);
    CHECK(message.find("not valid JSON") != std::string::npos);
  }
}

TEST_CASE("json writes nothing on a non-primary host", "[json]") {
  auto h = json_handler();
  TempDir dir;
  fs::create_directories(dir / "x");
  CallContext call = call_for(dir / "x", "x");
  call.is_primary_host = false;
  h->save(call, Value::json({{"a", 1}})).get();
  CHECK(fs::is_empty(dir / "x"));
}

TEST_CASE("a bad json handler configuration is refused", "[json]") {
  CHECK_THROWS_AS(json_handler({{"filename", "../escape.json"}}),
                  InvalidArgumentError);
  CHECK_THROWS_AS(json_handler({{"filename", 3}}), InvalidArgumentError);
}

TEST_CASE("the metrics handler is json scoped to metrics writing `metrics`",
          "[json]") {
  auto h = global_registry().get("metrics");
  CHECK(h->typestr() == "ckpt.json.JsonHandler");
  TempDir dir;
  save_with(*h, dir / "metrics", Value::json({{"loss", 0.5}}));
  CHECK(fs::exists(dir / "metrics" / "metrics"));
}
