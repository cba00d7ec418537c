// The proto plugin with others: protoc and Python's protobuf read what it
// writes, a user plugin with generated code for the same .proto works in
// the same process, and the checkpoint API (with Orbax's typestrs) saves
// and loads messages through it.
#include <ckpt/checkpoint.h>
#include <ckpt/errors.h>
#include <ckpt/handler.h>
#include <ckpt/plugins.h>
#include <ckpt/proto.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "proto_samples.h"
#include "test_util.h"

using namespace ckpt;
using namespace ckpt::test;

TEST_CASE("protoc --encode turns proto.pbtxt into the message's own bytes",
          "[proto][interop]") {
  RunConfig config = sample_config();
  TempDir dir;
  save_with(*proto_handler(), dir / "cfg", proto_value(config));
  CommandResult r = run_command(
      std::string(CKPT_PROTOC) + " --proto_path=" + CKPT_TEST_PROTO_DIR +
      " --encode=ckpt.test.RunConfig ckpt_test.proto < " +
      (dir / "cfg" / "proto.pbtxt").string() + " 2>&1");
  REQUIRE(r.status == 0);
  CHECK(r.output == wire_bytes(config));
}

TEST_CASE(
    "Python's protobuf text_format parses proto.pbtxt into the same "
    "message",
    "[proto][interop]") {
  RunConfig config = sample_config();
  TempDir dir;
  save_with(*proto_handler(), dir / "cfg", proto_value(config));
  CommandResult gen = run_command(
      std::string(CKPT_PROTOC) + " --proto_path=" + CKPT_TEST_PROTO_DIR +
      " --python_out=" + dir.path().string() + " ckpt_test.proto 2>&1");
  INFO(gen.output);
  REQUIRE(gen.status == 0);
  write_text(dir / "parse.py",
             "import sys\n"
             "sys.path.insert(0, sys.argv[1])\n"
             "import ckpt_test_pb2\n"
             "from google.protobuf import text_format\n"
             "with open(sys.argv[2], encoding='utf-8') as f:\n"
             "    message = text_format.Parse(f.read(), "
             "ckpt_test_pb2.RunConfig())\n"
             "sys.stdout.buffer.write("
             "message.SerializeToString(deterministic=True))\n");
  CommandResult r = run_command(
      std::string(CKPT_PYTHON) + " " + (dir / "parse.py").string() + " " +
      dir.path().string() + " " + (dir / "cfg" / "proto.pbtxt").string());
  REQUIRE(r.status == 0);
  RunConfig parsed;
  REQUIRE(parsed.ParseFromString(r.output));
  CHECK(wire_bytes(parsed) == wire_bytes(config));
}

TEST_CASE(
    "a user plugin with generated code for the host's .proto loads "
    "and works beside the proto plugin",
    "[proto][plugins]") {
  // The host (this test binary) holds the full generated code of
  // ckpt_test.proto; the user plugin holds generated code for it too.
  RunConfig config = sample_config();
  make_handler(kProtoTypestr);  // the proto plugin is loaded
  load_plugin(test_plugin("proto_user_handler.so"));
  HandlerPtr user = make_handler("test.RunSummaryHandler");
  Value value = proto_value(config);
  CHECK(user->is_handleable(value));
  TempDir dir;
  save_with(*user, dir / "summary", value);
  CHECK(read_text(dir / "summary" / "summary.txt") ==
        config.name() + "\n123456789012");
  Value type = proto_type<RunConfig>();
  RunConfig summary =
      from_proto_value<RunConfig>(load_with(*user, dir / "summary", &type));
  CHECK(summary.name() == config.name());
  CHECK(summary.step() == config.step());
  // The proto plugin still handles the same type.
  save_with(*proto_handler(), dir / "cfg", value);
  CHECK(wire_bytes(from_proto_value<RunConfig>(load_with(
            *proto_handler(), dir / "cfg", &type))) == wire_bytes(config));
}

TEST_CASE(
    "a message saved next to other checkpointables loads back "
    "through the checkpoint API",
    "[proto][checkpoint]") {
  TempDir dir;
  fs::path path = dir / "step_1";
  save_checkpointables(path, {{"config", proto_value(sample_config())},
                              {"notes", Value::json({{"seen", true}})}});
  CHECK(fs::exists(path / "config" / "proto.pbtxt"));
  CHECK(read_checkpoint_info(path).typestr_of("config") ==
        std::optional<std::string>(kProtoTypestr));
  auto parts =
      load_checkpointables(path, {{"config", proto_type<RunConfig>()}});
  REQUIRE(parts.size() == 1);
  CHECK(wire_bytes(from_proto_value<RunConfig>(parts[0].second)) ==
        wire_bytes(sample_config()));
  // As saved, without a type: the proto handler refuses, naming the
  // checkpointable.
  expect_error<InvalidArgumentError>(
      [&] {
        load_checkpointables(path, {{"config", Value()}});
      },
      {"failed to load checkpointable 'config'", "message type"});
  // Metadata is unsupported: none for that checkpointable.
  for (const auto& [name, metadata] : checkpointables_metadata(path).metadata) {
    if (name == "config") CHECK(metadata.is_none());
  }
}

TEST_CASE(
    "a checkpoint recording Orbax's ProtoHandler typestr loads with "
    "the proto handler",
    "[proto][checkpoint]") {
  TempDir dir;
  fs::path path = dir / "orbax_like";
  save_checkpointables(path, {{"config", proto_value(sample_config())}});
  auto metadata =
      nlohmann::json::parse(read_text(path / "_CHECKPOINT_METADATA"));
  metadata["item_handlers"]["config"] =
      "orbax.checkpoint.experimental.v1._src.handlers.proto_handler."
      "ProtoHandler";
  write_text(path / "_CHECKPOINT_METADATA", metadata.dump());
  strip_checksums(path);  // as Orbax wrote it
  Value type = proto_type<RunConfig>();
  CHECK(resolve_checkpointable_handler(read_checkpoint_info(path), "config",
                                       &type)
            ->typestr() == kProtoTypestr);
  auto parts = load_checkpointables(path, {{"config", type}});
  REQUIRE(parts.size() == 1);
  CHECK(wire_bytes(from_proto_value<RunConfig>(parts[0].second)) ==
        wire_bytes(sample_config()));
}
