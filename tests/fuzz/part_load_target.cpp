// Fuzz targets: a checkpoint with one json or proto checkpointable whose
// file is replaced by the input, _CHECKSUMS resealed to match, loaded
// through ckpt::load_checkpointables.
//
//  - json_data (CKPT_FUZZ_JSON): notes/data.json, loaded as saved;
//  - proto_pbtxt (CKPT_FUZZ_PROTO): config/proto.pbtxt, loaded as
//    ckpt.test.RunConfig and converted to the host's message.
#include <ckpt/checkpoint.h>
#include <ckpt/layout.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.h"

#ifdef CKPT_FUZZ_PROTO
#include <ckpt/proto.h>

#include "proto_sample.h"
#endif

namespace {

using namespace ckpt_fuzz;

fs::path checkpoint;
Sealer* sealer = nullptr;
#ifdef CKPT_FUZZ_PROTO
const ckpt::Value* message_type = nullptr;
const std::string kName = "config";
const std::string kFile = "config/proto.pbtxt";
#else
const std::string kName = "notes";
const std::string kFile = "notes/data.json";
#endif

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
#ifdef CKPT_FUZZ_PROTO
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
