// Fuzz targets: a checkpoint with one json or proto checkpointable whose
// file is replaced by the input, _CHECKSUMS resealed to match, loaded
// through ckpt::load_checkpointables.
//
//  - json_data (CKPT_FUZZ_JSON): notes/data.json, loaded as saved;
//  - proto_pbtxt (CKPT_FUZZ_PROTO): config/proto.pbtxt, loaded as
//    ckpt.test.RunConfig and converted to the host's message.
//
// Each input first goes through the format's own parser in this process
// (the json plugin's sdk::parse_json_from_disk; protobuf's text parser with
// the proto plugin's recursion limit). What it refuses, the plugin would
// refuse at the same step, behind checksums that match: such an input is
// counted as "refused by the parser" and skips the full load, which costs a
// hundred times more (files, checksums, plugin calls). Every input the
// parser accepts, and every proto input nested too deep for the quick parse,
// is loaded in full.
#include <ckpt/checkpoint.h>
#include <ckpt/layout.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.h"

#ifdef CKPT_FUZZ_PROTO
#include <ckpt/proto.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/text_format.h>

#include "proto_sample.h"
#else
#include <ckpt/sdk/error.h>
#include <ckpt/sdk/json.h>
#endif

namespace {

using namespace ckpt_fuzz;

fs::path checkpoint;
Sealer* sealer = nullptr;
#ifdef CKPT_FUZZ_PROTO
const ckpt::Value* message_type = nullptr;
const std::string kName = "config";
const std::string kFile = "config/proto.pbtxt";

// The proto plugin's limits (plugins/proto/proto_handler.cpp): the text
// parser's recursion limit, and the brace depth past which the plugin
// refuses the text before parsing it.
constexpr int kMaxMessageDepth = 100;

// Whether protobuf's text parser refuses `text` as a RunConfig. Inputs
// that open more than kMaxMessageDepth braces are not tried here (the
// parser's recursion through unknown fields is not bounded by its limit):
// they go to the full load, where the plugin checks their depth first.
bool parser_refuses(const uint8_t* data, size_t size) {
  int depth = 0;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == '{' || data[i] == '<') {
      if (++depth > kMaxMessageDepth) return false;
    } else if ((data[i] == '}' || data[i] == '>') && depth > 0) {
      --depth;
    }
  }
  ckpt::test::RunConfig message;
  google::protobuf::TextFormat::Parser parser;
  parser.SetRecursionLimit(kMaxMessageDepth);
  // Quiet: its errors would go to stderr on every refused input.
  struct Quiet final : google::protobuf::io::ErrorCollector {
    void AddError(int, google::protobuf::io::ColumnNumber,
                  const std::string&) override {}
    void AddWarning(int, google::protobuf::io::ColumnNumber,
                    const std::string&) override {}
  } quiet;
  parser.RecordErrorsTo(&quiet);
  return !parser.ParseFromString(
      std::string(reinterpret_cast<const char*>(data), size), &message);
}
#else
const std::string kName = "notes";
const std::string kFile = "notes/data.json";

bool parser_refuses(const uint8_t* data, size_t size) {
  try {
    (void)ckpt::sdk::parse_json_from_disk(
        std::string(reinterpret_cast<const char*>(data), size),
        "fuzz/data.json");
    return false;
  } catch (const ckpt::sdk::Error&) {
    return true;
  }
}
#endif

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
#ifdef CKPT_FUZZ_PROTO
  // protobuf logs every invalid UTF-8 string it parses, to stderr: a third
  // of the target's time. The plugin's errors say what failed anyway.
  google::protobuf::SetLogHandler(nullptr);
  checkpoint = scratch_dir("proto_pbtxt") / "ckpt";
  save_sample(checkpoint, {{kName, ckpt::proto_value(sample_config())}});
  message_type = new ckpt::Value(ckpt::proto_type<ckpt::test::RunConfig>());
#else
  checkpoint = scratch_dir("json_data") / "ckpt";
  save_sample(checkpoint, {{kName, ckpt::Value::json(sample_json())}});
#endif
  sealer = new Sealer(checkpoint);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (parser_refuses(data, size)) {
    count_refused();
    return 0;
  }
  write_file(checkpoint / kFile, data, size);
  sealer->reseal(kFile, data, size);
  expect_ckpt_errors("load_checkpointables", [] {
#ifdef CKPT_FUZZ_PROTO
    ckpt::Checkpointables parts =
        ckpt::load_checkpointables(checkpoint, {{kName, *message_type}});
    (void)ckpt::from_proto_value<ckpt::test::RunConfig>(parts.at(0).second);
#else
    (void)ckpt::load_checkpointables(checkpoint, {{kName, ckpt::Value()}});
#endif
  });
  return 0;
}
