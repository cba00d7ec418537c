// Handler resolution (ORBAX_SEMANTICS.md, Save resolution and Load
// resolution), over real toy handler plugins.
#include <ckpt/errors.h>
#include <ckpt/registry.h>
#include <ckpt/stateful.h>

#include <catch2/catch.hpp>

#include "test_util.h"

using namespace ckpt;
using ckpt::test::load_toy_plugin;
using ckpt::test::toy;

namespace {

HandlerPtr handler(const std::string& type, nlohmann::json config = {}) {
  return make_handler("test." + type + "Handler",
                      config.is_null() ? nlohmann::json::object() : config);
}

std::string save_pick(const HandlerRegistry& r, const std::string& name,
                      const Value& v) {
  return resolve_save_handler(r, name, v)->typestr();
}

std::string load_pick(const HandlerRegistry& r, const std::string& name,
                      const Value* abstract_value,
                      std::optional<std::string> recorded) {
  return resolve_load_handler(r, name, abstract_value, recorded)->typestr();
}

class Counter : public StatefulCheckpointable {
 public:
  BackgroundWork save(const std::filesystem::path&) override { return {}; }
  BackgroundWork load(const std::filesystem::path&) override { return {}; }
};

}  // namespace

TEST_CASE("save: the last registered general handler that can save wins",
          "[resolution]") {
  load_toy_plugin();
  Registry r;
  r.add(handler("Foo", {{"handles", {"Foo", "Shared"}}}));
  r.add(handler("Bar", {{"handles", {"Bar", "Shared"}}}));
  CHECK(save_pick(r, "x", toy("Shared")) == "test.BarHandler");
  CHECK(save_pick(r, "x", toy("Foo")) == "test.FooHandler");
}

TEST_CASE("save: a name-scoped entry beats capability without being asked",
          "[resolution]") {
  load_toy_plugin();
  Registry r;
  r.add(handler("Foo"));
  r.add(handler("Bar"), "special");
  // BarHandler cannot save a Foo, but it is bound to the name.
  CHECK(save_pick(r, "special", toy("Foo")) == "test.BarHandler");
  CHECK(save_pick(r, "other", toy("Foo")) == "test.FooHandler");
}

TEST_CASE("save: a name-scoped handler is never used for another name",
          "[resolution]") {
  load_toy_plugin();
  Registry r;
  r.add(handler("Bar"), "special");
  CHECK_THROWS_AS(save_pick(r, "other", toy("Bar")), NoEntryError);
}

TEST_CASE("save: a stateful value goes to a capable general handler first",
          "[resolution]") {
  load_toy_plugin();
  Registry r;
  r.add(make_handler("ckpt.StatefulCheckpointableHandler"));
  r.add(handler("Bar"), "state");
  Value v = Value::stateful(std::make_shared<Counter>());
  CHECK(save_pick(r, "state", v) == "ckpt.StatefulCheckpointableHandler");
}

TEST_CASE("save: none is an invalid argument and no handler is no entry",
          "[resolution]") {
  load_toy_plugin();
  Registry r;
  r.add(handler("Foo"));
  CHECK_THROWS_AS(save_pick(r, "x", Value()), InvalidArgumentError);
  try {
    save_pick(r, "params", toy("Nobody"));
    FAIL("expected NoEntryError");
  } catch (const NoEntryError& e) {
    std::string message = e.what();
    CHECK(message.find("'params'") != std::string::npos);
    CHECK(message.find("dict with 2 keys") != std::string::npos);
    CHECK(message.find("test.FooHandler") != std::string::npos);
  }
}

TEST_CASE("load: the recorded typestr beats LIFO order", "[resolution]") {
  load_toy_plugin();
  Registry r;
  r.add(handler("Foo", {{"accepts", {"Shared"}}}));
  r.add(handler("Bar", {{"accepts", {"Shared"}}}));
  Value abstract_value = Value::dict({{"type", "Shared"}});
  CHECK(load_pick(r, "x", &abstract_value, "test.FooHandler") ==
        "test.FooHandler");
  CHECK(load_pick(r, "x", nullptr, "test.FooHandler") == "test.FooHandler");
  // Without a recorded typestr, capability decides, newest first.
  CHECK(load_pick(r, "x", &abstract_value, std::nullopt) == "test.BarHandler");
}

TEST_CASE("load: secondary typestrs match the recorded typestr",
          "[resolution]") {
  load_toy_plugin();
  Registry r;
  r.add(handler("Foo"));
  r.add(handler("Bar"));
  CHECK(load_pick(r, "x", nullptr, "legacy.Foo") == "test.FooHandler");
  Registry r2;
  r2.add(handler("Bar"), std::nullopt, std::vector<std::string>{"old.Bar"});
  CHECK(load_pick(r2, "x", nullptr, "old.Bar") == "test.BarHandler");
}

TEST_CASE(
    "load: an abstract the recorded handler rejects goes to one that "
    "accepts it",
    "[resolution]") {
  load_toy_plugin();
  Registry r;
  r.add(handler("Foo"));
  r.add(handler("Bar"));
  r.add(handler("Baz"));
  // foo was saved by FooHandler; loading it as a Bar picks BarHandler.
  Value as_bar = Value::dict({{"type", "Bar"}});
  CHECK(load_pick(r, "foo", &as_bar, "test.FooHandler") == "test.BarHandler");
}

TEST_CASE("load: defer counts as no", "[resolution]") {
  load_toy_plugin();
  Registry r;
  r.add(handler("Foo", {{"accepts", {"Foo"}}}));
  r.add(
      handler("Bar", {{"accepts", nlohmann::json::array()}, {"defer", true}}));
  Value as_foo = Value::dict({{"type", "Foo"}});
  // BarHandler is newest and recorded, but it only defers.
  CHECK(load_pick(r, "x", &as_foo, "test.BarHandler") == "test.FooHandler");
}

TEST_CASE("load: the name-scoped handler wins when it accepts the abstract",
          "[resolution]") {
  load_toy_plugin();
  Registry r;
  r.add(handler("Foo", {{"accepts", {"Foo", "Bar"}}}));
  r.add(handler("Bar"), "special");
  Value as_bar = Value::dict({{"type", "Bar"}});
  CHECK(load_pick(r, "special", &as_bar, "test.FooHandler") ==
        "test.BarHandler");
  CHECK(load_pick(r, "special", nullptr, "test.FooHandler") ==
        "test.BarHandler");
}

TEST_CASE("load: the name-scoped handler is the last resort", "[resolution]") {
  load_toy_plugin();
  Registry r;
  r.add(handler("Bar"), "special");
  Value as_qux = Value::dict({{"type", "Qux"}});
  CHECK(load_pick(r, "special", &as_qux, std::nullopt) == "test.BarHandler");
  CHECK_THROWS_AS(load_pick(r, "other", &as_qux, std::nullopt), NoEntryError);
}

TEST_CASE(
    "load: a stateful abstract goes to the recorded handler that "
    "accepts it, even over a name scope",
    "[resolution]") {
  load_toy_plugin();
  Registry r;
  r.add(make_handler("ckpt.StatefulCheckpointableHandler"));
  r.add(handler("Bar", {{"accepts", nlohmann::json::array()}}), "it");
  Value instance = Value::stateful(std::make_shared<Counter>());
  CHECK(load_pick(r, "it", &instance, "ckpt.StatefulCheckpointableHandler") ==
        "ckpt.StatefulCheckpointableHandler");
}

TEST_CASE("load: an unknown recorded typestr with no abstract is no entry",
          "[resolution]") {
  load_toy_plugin();
  Registry r;
  r.add(handler("Foo"));
  try {
    load_pick(r, "x", nullptr, "somebody.Else");
    FAIL("expected NoEntryError");
  } catch (const NoEntryError& e) {
    CHECK(std::string(e.what()).find("somebody.Else") != std::string::npos);
  }
}
