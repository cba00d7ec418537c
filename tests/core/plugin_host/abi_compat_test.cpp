// ABI compatibility across 1.x (abi.h convention 10): a plugin built against
// the frozen ABI 1.0 header works in this core, and a plugin of this ABI
// keeps to what a 1.0 host knows.
#include <ckpt/abi.h>
#include <ckpt/checkpoint.h>
#include <ckpt/context.h>
#include <ckpt/errors.h>
#include <ckpt/plugins.h>
#include <ckpt/registry.h>

#include <catch2/catch.hpp>
#include <cstring>

#include "abi/fake_host_1_0.h"
#include "test_util.h"

using namespace ckpt;
using namespace ckpt::test;

namespace {

constexpr const char* kOldTypestr = "test.C99IntHandler.abi_1_0";

PluginInfo load_abi_1_0_plugin() {
  return load_plugin(test_plugin("c99_handler_abi_1_0.so"));
}

}  // namespace

TEST_CASE("a plugin built against the frozen ABI 1.0 header loads as 1.0",
          "[abi]") {
  PluginInfo info = load_abi_1_0_plugin();
  CHECK(info.abi_major == 1);
  CHECK(info.abi_minor == 0);
  HandlerPtr h = make_handler(kOldTypestr);
  CHECK(h->info().abi_minor == 0);
  // 1.0 had no capabilities: none are read from past its struct.
  CHECK_FALSE(h->info().load_needs_abstract);
}

TEST_CASE("a plugin built against ABI 1.0 saves and loads through this core",
          "[abi]") {
  load_abi_1_0_plugin();
  auto registry = local_registry();
  registry->add(make_handler(kOldTypestr), std::string("count"));
  ContextOptions o;
  o.checkpointables_options.registry = registry;
  Context context(o);
  TempDir dir;
  save_checkpointables(dir / "c", {{"count", Value(41)}});
  CHECK(read_text(dir / "c" / "count" / "int.txt") == "41");
  auto loaded = load_checkpointables(dir / "c", {{"count", Value()}});
  CHECK(loaded.at(0).second.as_int() == 41);
  // Its errors still arrive as the kinds it meant.
  strip_checksums(dir / "c");  // else the core finds the file missing first
  fs::remove(dir / "c" / "count" / "int.txt");
  CHECK_THROWS_AS(load_checkpointables(dir / "c", {{"count", Value()}}),
                  NotFoundError);
}

TEST_CASE("a plugin of ABI 1.0 is never shown an array spec of unknown dtype",
          "[abi]") {
  load_abi_1_0_plugin();
  HandlerPtr old_handler = make_handler(kOldTypestr);
  // The plugin answers yes to any dtype it does not know: the core must not
  // ask it about one.
  const Value unknown = ArraySpec{std::nullopt, {3}};
  CHECK(old_handler->is_abstract_handleable(unknown) == Answer::kNo);
  CHECK_FALSE(old_handler->is_handleable(Value::dict({{"a", unknown}})));
  TempDir dir;
  fs::create_directories(dir / "n");
  std::string m = message_of<InvalidArgumentError>(
      [&] { load_with(*old_handler, dir / "n", &unknown); });
  CHECK(m.find("ABI 1.0") != std::string::npos);
  CHECK(m.find(kOldTypestr) != std::string::npos);
  // The same plugin built against ABI 1.1 is asked, and answers itself.
  load_plugin(test_plugin("c99_handler.so"));
  CHECK(make_handler("test.C99IntHandler")->is_abstract_handleable(unknown) ==
        Answer::kNo);
}

TEST_CASE("a plugin older than ABI 1.3 is never shown a sharded array",
          "[abi][sharded]") {
  load_abi_1_0_plugin();
  HandlerPtr old_handler = make_handler(kOldTypestr);
  ShardedArray w{DType::kInt64, {2}, {}, nullptr};
  w.shards.push_back({{0}, Array::from<int64_t>({1, 2})});
  const Value spec = ShardedSpec{DType::kInt64, {2}, {{{0}, {2}}}};
  CHECK_FALSE(old_handler->is_handleable(Value(w)));
  CHECK(old_handler->is_abstract_handleable(spec) == Answer::kNo);
  TempDir dir;
  fs::create_directories(dir / "n");
  std::string m = message_of<InvalidArgumentError>(
      [&] { load_with(*old_handler, dir / "n", &spec); });
  CHECK(m.find("needs ABI 1.3") != std::string::npos);
}

TEST_CASE(
    "a plugin of this ABI reports its minor and passes a 1.0 host only 1.0 "
    "error codes",
    "[abi]") {
  // A private copy: the core may have this plugin loaded already, and a
  // second host must not share its state.
  TempDir dir;
  const fs::path copy = dir / "toy_handlers_copy.so";
  fs::copy_file(test_plugin("toy_handlers.so"), copy);
  fs::create_directories(dir / "out");
  fake_host_1_0_report report;
  REQUIRE(fake_host_1_0_save(copy.c_str(), "test.FooHandler", "{}", "os-error",
                             "13", (dir / "out").c_str(), &report) == 0);
  INFO(report.failure);
  CHECK(report.entered == 1);
  CHECK(report.plugin_abi_major == CKPT_ABI_MAJOR);
  CHECK(report.plugin_abi_minor == CKPT_ABI_MINOR);
  // Its handler type is at least what 1.0 reads, and says how large it is.
  CHECK(report.handler_type_size >= report.handler_type_size_1_0);
  CHECK(report.handler_type_size == CKPT_HANDLER_TYPE_STRUCT_SIZE);
  // EACCES is CKPT_ERROR_PERMISSION_DENIED (1.1) for this core, but a 1.0
  // host only knows codes up to CKPT_ERROR_UNIMPLEMENTED.
  CHECK(report.save_error_code == CKPT_ERROR_INTERNAL);
  CHECK(report.max_error_code <= CKPT_ERROR_UNIMPLEMENTED);
  CHECK(std::strstr(report.save_error, std::strerror(EACCES)) != nullptr);
}

TEST_CASE(
    "finalize_save (1.4) runs after the background tier, before the "
    "commit",
    "[abi]") {
  load_toy_plugin();
  auto registry = local_registry();
  registry->add(
      make_handler("test.FooHandler", {{"handles", {"Foo", "finalize-error"}}}),
      std::string("t"));
  ContextOptions o;
  o.checkpointables_options.registry = registry;
  o.fsync = false;
  Context context(o);
  TempDir dir;
  // toy.txt is written by the background tier: finalize saw it whole, and
  // what it wrote is committed and checksummed like the rest.
  save_checkpointables(dir / "c", {{"t", toy("Foo", "one")}});
  CHECK(read_text(dir / "c" / "t" / "finalized.txt") == "Foo\none (of 1)");
  CHECK(read_text(dir / "c" / "_CHECKSUMS").find("finalized.txt") !=
        std::string::npos);
  // A failing finalize fails the save, naming the checkpointable, and
  // nothing is committed: the checkpoint there stays as it was.
  SaveOptions overwrite;
  overwrite.overwrite = true;
  const std::string m = message_of<DataLossError>([&] {
    save_checkpointables(dir / "c", {{"t", toy("finalize-error", "two")}},
                         overwrite);
  });
  CHECK_THAT(m, Catch::Contains("checkpointable 't'"));
  CHECK_THAT(m, Catch::Contains("toy finalize refused"));
  CHECK(read_text(dir / "c" / "t" / "toy.txt") == "Foo\none");
  CHECK(load_checkpointables(dir / "c", {{"t", Value()}})
            .at(0)
            .second.at("data")
            .as_string() == "one");
  for (const auto& e : fs::directory_iterator(dir.path())) {
    CHECK(e.path().filename() == "c");  // no temporary folder left
  }
}

TEST_CASE("the same OS error from a plugin is a PermissionDeniedError here",
          "[abi][errors]") {
  load_toy_plugin();
  HandlerPtr foo = make_handler("test.FooHandler");
  TempDir dir;
  fs::create_directories(dir / "x");
  std::string m = message_of<PermissionDeniedError>(
      [&] { save_with(*foo, dir / "x", toy("os-error", "13")); });
  CHECK(m.find(std::strerror(EACCES)) != std::string::npos);
  CHECK(m.find((dir / "x").string()) != std::string::npos);
}

TEST_CASE("struct size constants end at each struct's last field", "[abi]") {
  // ABI 1.0 structs all end on an 8-byte field: sizeof() and the constant
  // agree, so a 1.0 peer's struct_size is the 1.0 constant.
  CHECK(CKPT_HANDLER_TYPE_STRUCT_SIZE_1_0 ==
        offsetof(ckpt_handler_type, metadata) + sizeof(void*));
  CHECK(CKPT_HANDLER_TYPE_STRUCT_SIZE == sizeof(ckpt_handler_type));
  CHECK(CKPT_VALUE_STRUCT_SIZE == sizeof(ckpt_value));
  CHECK(CKPT_HOST_API_STRUCT_SIZE == sizeof(ckpt_host_api));
  CHECK(CKPT_SHARDED_ARRAY_STRUCT_SIZE == sizeof(ckpt_sharded_array));
  // An element of arrays: frozen at four 8-byte fields.
  CHECK(sizeof(ckpt_shard) == 4 * 8);
  CHECK(CKPT_HANDLER_TYPE_STRUCT_SIZE_1_2 ==
        offsetof(ckpt_handler_type, num_self_checked_files) + sizeof(size_t));
  CHECK(CKPT_HANDLER_TYPE_STRUCT_SIZE_1_3 ==
        offsetof(ckpt_handler_type, num_self_checked_prefixes) +
            sizeof(size_t));
  CHECK(CKPT_FINALIZE_ARGS_STRUCT_SIZE == sizeof(ckpt_finalize_args));
  ckpt_handler_type old_type{};
  old_type.struct_size = CKPT_HANDLER_TYPE_STRUCT_SIZE_1_0;
  CHECK_FALSE(CKPT_HAS_FIELD(&old_type, ckpt_handler_type, capabilities));
  old_type.struct_size = CKPT_HANDLER_TYPE_STRUCT_SIZE_1_3;
  CHECK(CKPT_HAS_FIELD(&old_type, ckpt_handler_type, capabilities));
  CHECK_FALSE(CKPT_HAS_FIELD(&old_type, ckpt_handler_type, finalize_save));
  old_type.struct_size = CKPT_HANDLER_TYPE_STRUCT_SIZE;
  CHECK(CKPT_HAS_FIELD(&old_type, ckpt_handler_type, finalize_save));
}
