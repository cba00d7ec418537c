// Text from the caller that ends up in JSON (names, keys, strings, metadata,
// options, step names) must be UTF-8: anything else is an
// InvalidArgumentError naming it, escaped, before a byte is written.
#include <ckpt/checkpoint.h>
#include <ckpt/checkpointer.h>
#include <ckpt/context.h>
#include <ckpt/errors.h>
#include <ckpt/registry.h>

#include <catch2/catch.hpp>
#include <functional>

#include "test_util.h"

using namespace ckpt;
using namespace ckpt::test;

namespace {

const std::string kBad = "caf\xff";  // 0xFF is never UTF-8

Value small_tree() {
  Value tree = Value::dict();
  tree.set("w", Value(1));
  return tree;
}

// `action` fails with InvalidArgumentError whose message holds every one
// of `parts`, and leaves `dir` as empty as it was.
void refused(const TempDir& dir, const std::function<void()>& action,
             const std::vector<std::string>& parts) {
  try {
    action();
    FAIL("no error");
  } catch (const InvalidArgumentError& e) {
    for (const std::string& part : parts) {
      CHECK_THAT(e.what(), Catch::Contains(part));
    }
    CHECK_THAT(e.what(), Catch::Contains("caf\\xff"));
  }
  CHECK(folder_entries(dir.path()).empty());
}

}  // namespace

TEST_CASE("a checkpointable name that is not UTF-8 is refused before writing",
          "[utf8]") {
  TempDir dir;
  refused(dir,
          [&] {
            save_checkpointables(dir / "c", {{kBad, small_tree()}});
          },
          {"invalid checkpointable name", "not valid UTF-8"});
  // Valid UTF-8 beyond ASCII is a name like any other.
  save_checkpointables(dir / "c", {{"café", small_tree()}});
  CHECK(load_checkpointables(dir / "c").at(0).first == "café");
}

TEST_CASE("a handler configured with a file name that is not UTF-8 is refused",
          "[utf8]") {
  TempDir dir;
  refused(
      dir,
      [&] {
        ContextOptions o;
        o.checkpointables_options =
            CheckpointablesOptions::create_with_handlers(
                {{"config", make_handler("ckpt.json.JsonHandler",
                                         {{"filename", kBad}})}});
        Context context(o);
        save_checkpointables(dir / "c", {{"config", Value::json({{"a", 1}})}});
      },
      {"configuration of handler ckpt.json.JsonHandler", "not valid UTF-8"});
}

TEST_CASE(
    "metadata, metrics, options and values that are not UTF-8 are "
    "refused, naming where",
    "[utf8]") {
  TempDir dir;
  SECTION("custom metadata: a key") {
    SaveOptions options;
    options.custom_metadata = {{"run", {{kBad, 1}}}};
    refused(dir, [&] { save(dir / "c", small_tree(), options); },
            {"custom_metadata", "the key", "at ['run']"});
  }
  SECTION("metrics: a string") {
    SaveOptions options;
    options.metrics = nlohmann::json{{"note", kBad}};
    refused(dir, [&] { save(dir / "c", small_tree(), options); },
            {"metrics", "the string", "at ['note']"});
  }
  SECTION("a JSON checkpointable: a string deep in a list") {
    refused(dir,
            [&] {
              save_checkpointables(
                  dir / "c",
                  {{"config", Value::json({{"layers", {1, kBad}}})}});
            },
            {"checkpointable 'config'", "the string", "at ['layers'][1]"});
  }
  SECTION("a tree: a dict key and a string") {
    Value tree = small_tree();
    Value inner = Value::dict();
    inner.set(kBad, Value(2));
    tree.set("inner", inner);
    refused(dir, [&] { save(dir / "c", tree); },
            {"checkpointable 'state'", "the key", "at ['inner']"});
    Value strings = small_tree();
    strings.set("name", Value(kBad));
    refused(dir, [&] { save(dir / "c", strings); },
            {"the string", "at ['name']"});
  }
  SECTION("handler options of a Context") {
    refused(dir,
            [&] {
              ContextOptions o;
              o.handler_options = {{"pytree", {{"storage", kBad}}}};
              Context context(o);
            },
            {"handler_options", "the string", "at ['pytree']['storage']"});
  }
  SECTION("a Checkpointer's step name prefix") {
    refused(dir,
            [&] {
              CheckpointerOptions o;
              o.step_name_format.prefix = kBad;
              Checkpointer checkpointer(dir / "run", o);
            },
            {"step name format", "not valid UTF-8"});
  }
  SECTION("a Checkpointer's metrics key") {
    Checkpointer checkpointer(dir / "run");
    try {
      checkpointer.save_pytree(1, small_tree(), nlohmann::json{{kBad, 1.0}});
      FAIL("no error");
    } catch (const InvalidArgumentError& e) {
      CHECK_THAT(e.what(), Catch::Contains("metrics"));
      CHECK_THAT(e.what(), Catch::Contains("caf\\xff"));
    }
    CHECK(list_checkpoint_root(dir / "run").steps.empty());
    CHECK(list_checkpoint_root(dir / "run").temporaries.empty());
  }
}
