// A checkpointable saved by a plugin that is not loaded: loading it keeps
// Orbax's fallback rule, and when the fallback fails the error says which
// plugin is missing; `ckpt info` and `ckpt verify` say so too.
#include <ckpt/checkpoint.h>
#include <ckpt/context.h>
#include <ckpt/errors.h>
#include <ckpt/plugins.h>
#include <ckpt/registry.h>

#include <catch2/catch.hpp>

#include "test_util.h"

using namespace ckpt;
using namespace ckpt::test;

namespace {

// A checkpoint whose "notes" part was saved by test.FooHandler (a toy
// plugin type that the default registry does not hold) and whose "cfg"
// part is plain JSON.
fs::path save_with_foo(const TempDir& dir) {
  load_toy_plugin();
  auto registry = local_registry();
  registry->add(make_handler("test.FooHandler"), std::string("notes"));
  ContextOptions o;
  o.checkpointables_options.registry = registry;
  Context context(o);
  save_checkpointables(dir / "c", {{"notes", toy("Foo", "hello")},
                                   {"cfg", Value::json({{"a", 1}})}});
  return dir / "c";
}

CommandResult ckpt_tool(const std::string& args) {
  return run_command(std::string(CKPT_TOOL) + " " + args + " 2>&1");
}

}  // namespace

TEST_CASE(
    "loading a checkpointable whose plugin is missing names the typestr, the "
    "folders searched and the fallback's failure",
    "[resolution][plugins]") {
  TempDir dir;
  const fs::path c = save_with_foo(dir);
  const CheckpointInfo info = read_checkpoint_info(c);
  CHECK(unclaimed_typestr(info, "notes") == std::string("test.FooHandler"));
  CHECK_FALSE(unclaimed_typestr(info, "cfg"));
  std::string m = message_of<NoEntryError>([&] {
    load_checkpointables(c, {{"notes", Value()}});
  });
  INFO(m);
  CHECK(m.find("'notes'") != std::string::npos);
  CHECK(m.find("test.FooHandler") != std::string::npos);
  CHECK(m.find("no loaded plugin claims") != std::string::npos);
  CHECK(m.find(builtin_plugin_folder().string()) != std::string::npos);
  // Then the fallback's own failure: the pytree handler finds no _METADATA.
  CHECK(m.find("_METADATA") != std::string::npos);
  CHECK(m.find("no loaded plugin claims") < m.find("_METADATA"));
  // The other checkpointable is not affected.
  CHECK(load_checkpointables(c, {{"cfg", Value()}})[0].second.as_json() ==
        nlohmann::json{{"a", 1}});
}

TEST_CASE("a name binding still loads a checkpointable whose plugin is missing",
          "[resolution][plugins]") {
  TempDir dir;
  const fs::path c = save_with_foo(dir);
  auto registry = local_registry();
  registry->add(make_handler("test.BarHandler", {{"accepts", {"Foo"}}}),
                std::string("notes"));
  ContextOptions o;
  o.checkpointables_options.registry = registry;
  Context context(o);
  Value v = load_checkpointables(c, {{"notes", Value()}})[0].second;
  CHECK(v.at("loaded_by").as_string() == "test.BarHandler");
}

TEST_CASE("ckpt info marks, and ckpt verify counts, a missing plugin",
          "[tool][plugins]") {
  TempDir dir;
  const fs::path c = save_with_foo(dir);
  CommandResult info = ckpt_tool("info " + c.string());
  INFO(info.output);
  CHECK(info.status == 0);
  CHECK(info.output.find("no plugin for test.FooHandler") != std::string::npos);
  CommandResult verify = ckpt_tool("verify " + c.string());
  INFO(verify.output);
  CHECK(verify.status == 1);
  CHECK(verify.output.find("no plugin for test.FooHandler") !=
        std::string::npos);
  CHECK(verify.output.find("1 problem") != std::string::npos);
  CommandResult json = ckpt_tool("info --json " + c.string());
  auto out = nlohmann::json::parse(json.output);
  for (const auto& part : out["checkpointables"]) {
    INFO(part.dump());
    CHECK(part["no_plugin"].is_null() == (part["name"] != "notes"));
  }
}
