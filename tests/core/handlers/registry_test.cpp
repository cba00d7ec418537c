// The registry rules of Orbax v1 (ORBAX_SEMANTICS.md, Registry).
#include <ckpt/context.h>
#include <ckpt/errors.h>
#include <ckpt/registry.h>

#include <catch2/catch.hpp>

#include "test_util.h"

using namespace ckpt;
using ckpt::test::load_toy_plugin;

namespace {
HandlerPtr foo() { return make_handler("test.FooHandler"); }
HandlerPtr bar() { return make_handler("test.BarHandler"); }
}  // namespace

TEST_CASE("a named add fails only when that name already has an entry",
          "[registry]") {
  load_toy_plugin();
  Registry r;
  r.add(foo(), "a");
  r.add(foo(), "b");  // same handler type under another name is fine
  CHECK_THROWS_AS(r.add(bar(), "a"), AlreadyExistsError);
  CHECK(r.get("a")->typestr() == "test.FooHandler");
  CHECK(r.get_all_entries().size() == 2);
}

TEST_CASE("a handler may be registered generally and then by name",
          "[registry]") {
  load_toy_plugin();
  Registry r;
  r.add(foo());
  r.add(foo(), "state");
  REQUIRE(r.get_all_entries().size() == 2);
  CHECK_FALSE(r.get_all_entries()[0].checkpointable_name.has_value());
  CHECK(r.get_all_entries()[1].checkpointable_name == std::string("state"));
}

TEST_CASE("a general add fails when the handler type is in any entry",
          "[registry]") {
  load_toy_plugin();
  Registry r;
  r.add(foo(), "x");
  CHECK_THROWS_AS(r.add(foo()), AlreadyExistsError);
  CHECK_THROWS_AS(r.add(foo(), ""), AlreadyExistsError);  // empty = general
  r.add(bar());
  CHECK_THROWS_AS(r.add(bar()), AlreadyExistsError);
}

TEST_CASE("get, has and get_all_entries follow registration order",
          "[registry]") {
  load_toy_plugin();
  Registry r;
  r.add(bar());
  r.add(foo(), "f");
  CHECK(r.has("f"));
  CHECK_FALSE(r.has("g"));
  CHECK_THROWS_AS(r.get("g"), NoEntryError);
  auto entries = r.get_all_entries();
  REQUIRE(entries.size() == 2);
  CHECK(entries[0].handler->typestr() == "test.BarHandler");
  CHECK(entries[1].handler->typestr() == "test.FooHandler");
}

TEST_CASE("the last add that passes secondary typestrs wins", "[registry]") {
  load_toy_plugin();
  Registry r;
  auto f = foo();
  CHECK(r.get_secondary_typestrs(*f) == std::vector<std::string>{"legacy.Foo"});
  r.add(f, "a", std::vector<std::string>{"one"});
  r.add(f, "b");  // no list: keeps "one"
  CHECK(r.get_secondary_typestrs(*f) == std::vector<std::string>{"one"});
  r.add(f, "c", std::vector<std::string>{"two", "three"});
  CHECK(r.get_secondary_typestrs(*f) ==
        std::vector<std::string>{"two", "three"});
}

TEST_CASE("a local registry is a snapshot of the global registry",
          "[registry]") {
  load_toy_plugin();
  auto local = local_registry();
  const size_t before = local->get_all_entries().size();
  CHECK(before == global_registry().get_all_entries().size());
  register_handler(make_handler("test.BazHandler"), "snapshot-test");
  CHECK(local->get_all_entries().size() == before);
  CHECK_FALSE(local->has("snapshot-test"));
  CHECK(global_registry().has("snapshot-test"));
}

TEST_CASE("a local registry puts other's entries after the global ones",
          "[registry]") {
  load_toy_plugin();
  Registry other;
  other.add(foo(), "mine");
  auto with_global = local_registry(&other);
  auto entries = with_global->get_all_entries();
  CHECK(entries.back().checkpointable_name == std::string("mine"));
  CHECK(entries.size() == global_registry().get_all_entries().size() + 1);
  auto without_global = local_registry(&other, false);
  CHECK(without_global->get_all_entries().size() == 1);
}

TEST_CASE("a read-only registry refuses add", "[registry]") {
  load_toy_plugin();
  auto base = std::make_shared<Registry>();
  base->add(foo(), "x");
  ReadOnlyRegistry view(base);
  CHECK(view.has("x"));
  CHECK_THROWS_AS(view.add(bar()), InvalidArgumentError);
  CHECK(base->get_all_entries().size() == 1);
}

TEST_CASE("a Context's default registry is a read-only snapshot",
          "[registry]") {
  load_toy_plugin();
  Context context;
  CHECK_THROWS_AS(const_cast<HandlerRegistry&>(context.registry()).add(bar()),
                  InvalidArgumentError);
  const size_t before = context.registry().get_all_entries().size();
  register_handler(make_handler("test.BazHandler"), "context-snapshot-test");
  CHECK(context.registry().get_all_entries().size() == before);
}

TEST_CASE("create_with_handlers binds instances to names for one scope",
          "[registry]") {
  load_toy_plugin();
  auto options = CheckpointablesOptions::create_with_handlers(
      {{"config",
        make_handler("ckpt.json.JsonHandler", {{"filename", "config.json"}})}});
  {
    ContextOptions context_options;
    context_options.checkpointables_options = options;
    Context context(context_options);
    HandlerPtr h = context.registry().get("config");
    CHECK(h->config().at("filename") == "config.json");
    CHECK(&Context::current() == &context);
  }
  CHECK_FALSE(Context::current().registry().has("config"));
}

TEST_CASE("a user class can implement the registry interface", "[registry]") {
  load_toy_plugin();
  // The seed's MyCustomRegistry: everything by name in a map.
  class MyCustomRegistry : public HandlerRegistry {
   public:
    MyCustomRegistry& add(HandlerPtr h, std::optional<std::string> name,
                          std::optional<std::vector<std::string>>) override {
      entries_.push_back({h, name});
      return *this;
    }
    HandlerPtr get(const std::string& name) const override {
      for (const auto& e : entries_) {
        if (e.checkpointable_name == name) return e.handler;
      }
      throw NoEntryError(name);
    }
    bool has(const std::string& name) const override {
      for (const auto& e : entries_) {
        if (e.checkpointable_name == name) return true;
      }
      return false;
    }
    std::vector<RegistryEntry> get_all_entries() const override {
      return entries_;
    }

   private:
    std::vector<RegistryEntry> entries_;
  };
  MyCustomRegistry mine;
  mine.add(foo(), std::nullopt, std::nullopt);
  mine.add(bar(), std::nullopt, std::nullopt);
  CHECK(resolve_save_handler(mine, "x", test::toy("Bar"))->typestr() ==
        "test.BarHandler");
}
