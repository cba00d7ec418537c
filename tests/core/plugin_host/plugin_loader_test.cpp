// Loading plugins: a C99 plugin, a plugin built out of tree, and every kind
// of bad plugin, each failing with an error that names the file while the
// host goes on working.
#include <ckpt/abi.h>
#include <ckpt/context.h>
#include <ckpt/errors.h>
#include <ckpt/plugins.h>
#include <ckpt/registry.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "test_util.h"

using namespace ckpt;
using namespace ckpt::test;

namespace {

// Expects load_plugin(file) to throw PluginError mentioning the file and
// `reason`, and the host to keep working afterwards.
void expect_plugin_error(const fs::path& file, const std::string& reason) {
  try {
    load_plugin(file);
    FAIL("expected PluginError for " << file);
  } catch (const PluginError& e) {
    std::string message = e.what();
    INFO(message);
    CHECK(message.find(file.filename().string()) != std::string::npos);
    CHECK(message.find(reason) != std::string::npos);
  }
  // The host goes on: the json plugin still saves and loads.
  TempDir dir;
  HandlerPtr json = make_handler("ckpt.json.JsonHandler");
  save_with(*json, dir / "item", Value::json({{"ok", true}}));
  CHECK(load_with(*json, dir / "item").as_json() ==
        nlohmann::json{{"ok", true}});
}

// Compiles tests/test_plugins/out_of_tree_handler.cpp against sdk/include only,
// into a fresh folder; returns that folder.
const fs::path& out_of_tree_plugin_folder() {
  static TempDir dir;
  static bool built = [] {
    std::string command = std::string(CKPT_CXX) +
                          " -std=c++17 -shared -fPIC -fvisibility=hidden -I" +
                          CKPT_SOURCE_ROOT + "/sdk/include " +
                          CKPT_SOURCE_ROOT +
                          "/tests/test_plugins/out_of_tree_handler.cpp -o " +
                          (dir / "ckpt-plugin-oot.so").string() + " 2>&1";
    CommandResult r = run_command(command);
    INFO(r.output);
    REQUIRE(r.status == 0);
    return true;
  }();
  (void)built;
  return dir.path();
}

}  // namespace

TEST_CASE("a handler plugin written in C99 saves and loads a value",
          "[plugins]") {
  load_plugin(test_plugin("c99_handler.so"));
  HandlerPtr h = make_handler("test.C99IntHandler");
  CHECK(h->is_handleable(Value(7)));
  CHECK_FALSE(h->is_handleable(Value("seven")));
  CHECK(h->is_abstract_handleable(Value::scalar_spec(Value::Kind::kInt)) ==
        Answer::kYes);
  TempDir dir;
  save_with(*h, dir / "n", Value(1234567890123LL));
  CHECK(read_text(dir / "n" / "int.txt") == "1234567890123");
  CHECK(load_with(*h, dir / "n").as_int() == 1234567890123LL);
  CHECK_THROWS_AS(load_with(*h, dir / "missing"), NotFoundError);
}

TEST_CASE("a plugin for another ABI major is refused, naming the file",
          "[plugins]") {
  expect_plugin_error(test_plugin("bad_wrong_major.so"), "ABI 99.0");
}

TEST_CASE("a shared object without the entry symbol is refused", "[plugins]") {
  expect_plugin_error(test_plugin("bad_no_entry.so"), "ckpt_plugin_entry");
}

TEST_CASE("a plugin whose initialisation fails is refused with its reason",
          "[plugins]") {
  expect_plugin_error(test_plugin("bad_init_fails.so"),
                      "the licence server is unreachable");
}

TEST_CASE("a plugin registering a typestr another plugin owns is refused",
          "[plugins]") {
  make_handler("ckpt.json.JsonHandler");  // built-ins loaded first
  expect_plugin_error(test_plugin("bad_duplicate.so"), "already registered");
}

TEST_CASE("a plugin asking for a name that already has an entry is refused",
          "[plugins]") {
  expect_plugin_error(test_plugin("bad_duplicate_name.so"),
                      "duplicate registration");
  // Nothing of it reached the registry.
  CHECK(global_registry().get("metrics")->typestr() == "ckpt.json.JsonHandler");
}

TEST_CASE("exceptions thrown by handler code become errors naming the plugin",
          "[plugins]") {
  load_plugin(test_plugin("bad_throws.so"));
  HandlerPtr h = make_handler("test.ThrowingHandler");
  TempDir dir;
  try {
    save_with(*h, dir / "x", Value("boom"));
    FAIL("expected PluginError");
  } catch (const PluginError& e) {
    std::string message = e.what();
    CHECK(message.find("disk on fire") != std::string::npos);
    CHECK(message.find("bad_throws.so") != std::string::npos);
  }
  try {
    load_with(*h, dir / "x");
    FAIL("expected PluginError");
  } catch (const PluginError& e) {
    CHECK(std::string(e.what()).find("tea leaves") != std::string::npos);
  }
}

TEST_CASE("a file that is not a shared object is refused", "[plugins]") {
  TempDir dir;
  write_text(dir / "ckpt-plugin-junk.so", "this is not an ELF file\n");
  expect_plugin_error(dir / "ckpt-plugin-junk.so",
                      "not a loadable shared object");
  // In a folder scan it is recorded, not thrown.
  auto loaded = load_plugin_folder(dir.path());
  CHECK(loaded.empty());
  bool recorded = false;
  for (const auto& f : plugin_failures()) {
    recorded |= f.path.filename() == "ckpt-plugin-junk.so";
  }
  CHECK(recorded);
}

TEST_CASE("a world-writable plugin folder is refused unless allowed",
          "[plugins]") {
  TempDir dir;
  fs::copy_file(test_plugin("bad_wrong_major.so"), dir / "ckpt-plugin-x.so");
  ::chmod(dir.path().c_str(), 0777);
  expect_plugin_error(dir / "ckpt-plugin-x.so", "writable by other users");
  // Allowed explicitly, the file is opened (and fails for its own reason).
  try {
    load_plugin(dir / "ckpt-plugin-x.so", /*allow_insecure=*/true);
    FAIL("expected PluginError");
  } catch (const PluginError& e) {
    CHECK(std::string(e.what()).find("ABI 99.0") != std::string::npos);
  }
}

TEST_CASE("a plugin compiled out of tree against sdk/include alone loads",
          "[plugins]") {
  const fs::path& folder = out_of_tree_plugin_folder();
  auto context_registry = local_registry();
  auto loaded = load_plugin_folder(folder, false, context_registry.get());
  REQUIRE(loaded.size() == 1);
  CHECK(loaded[0].name == "out-of-tree");
  CHECK(context_registry->get("notes")->typestr() == "test.OutOfTreeHandler");
  HandlerPtr h = make_handler("test.OutOfTreeHandler");
  TempDir dir;
  save_with(*h, dir / "n", Value("oot: hello"));
  CHECK(load_with(*h, dir / "n").as_string() == "oot: hello");
}

TEST_CASE(
    "ckpt plugins --json lists the registry in order, with plugins "
    "from CKPT_PLUGIN_PATH",
    "[plugins][tool]") {
  const fs::path& folder = out_of_tree_plugin_folder();
  CommandResult r = run_command("CKPT_PLUGIN_PATH=" + folder.string() + " " +
                                CKPT_TOOL + " plugins --json");
  INFO(r.output);
  REQUIRE(r.status == 0);
  auto out = nlohmann::json::parse(r.output);
  std::vector<std::string> order;
  for (const auto& e : out["entries"]) {
    order.push_back(e["typestr"].get<std::string>() + "@" +
                    (e["checkpointable_name"].is_null()
                         ? std::string("*")
                         : e["checkpointable_name"].get<std::string>()));
  }
  std::vector<std::string> expected = {
      "ckpt.StatefulCheckpointableHandler@*", "ckpt.json.JsonHandler@*",
      "ckpt.json.JsonHandler@metrics", "ckpt.proto.ProtoHandler@*"};
  REQUIRE(order.size() >= expected.size() + 2);
  CHECK(std::equal(expected.begin(), expected.end(), order.begin()));
  CHECK(order[order.size() - 2] == "test.OutOfTreeHandler@*");
  CHECK(order.back() == "test.OutOfTreeHandler@notes");
  const auto& json_entry = out["entries"][1];
  CHECK(json_entry["secondary_typestrs"].size() == 2);
  CHECK(json_entry["file"].get<std::string>().find("ckpt-plugin-json.so") !=
        std::string::npos);
  CHECK(json_entry["abi_version"] ==
        std::to_string(CKPT_ABI_MAJOR) + "." + std::to_string(CKPT_ABI_MINOR));
}

TEST_CASE("ckpt plugins reports a plugin that failed to load and exits 1",
          "[plugins][tool]") {
  TempDir dir;
  write_text(dir / "ckpt-plugin-broken.so", "not a library");
  CommandResult r =
      run_command("CKPT_LOG_LEVEL=off CKPT_PLUGIN_PATH=" + dir.path().string() +
                  " " + CKPT_TOOL + " plugins");
  CHECK(r.status == 1);
  CHECK(r.output.find("FAILED") != std::string::npos);
  CHECK(r.output.find("ckpt-plugin-broken.so") != std::string::npos);
}

TEST_CASE(
    "plugins from a Context's plugin paths register in that Context "
    "only",
    "[plugins][context]") {
  const fs::path& folder = out_of_tree_plugin_folder();
  {
    ContextOptions options;
    options.plugin_paths = {folder};
    Context context(options);
    CHECK(context.registry().has("notes"));
    CHECK(resolve_save_handler(context.registry(), "x", Value("oot: x"))
              ->typestr() == "test.OutOfTreeHandler");
  }
  CHECK_FALSE(Context::current().registry().has("notes"));
}
