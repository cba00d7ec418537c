// Fuzz target: _CHECKPOINT_METADATA, read by ckpt::read_checkpoint_info and
// then by a load's handler resolution (the typestrs it records).
//
// The folder holds the input as _CHECKPOINT_METADATA, the orbax.checkpoint
// marker and one json checkpointable, "notes". Built twice:
//  - checkpoint_metadata: no _CHECKSUMS, the path of Orbax's and older
//    ckpt checkpoints (an input recording ckpt_format_version 2 is
//    DataLossError: format 2 requires _CHECKSUMS);
//  - checkpoint_metadata_sealed (CKPT_FUZZ_SEALED): a _CHECKSUMS that
//    matches the input, so that the parse is reached in format 2 too.
#include <ckpt/checkpoint.h>
#include <ckpt/layout.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.h"

namespace {

using namespace ckpt_fuzz;

fs::path checkpoint;
#ifdef CKPT_FUZZ_SEALED
Sealer* sealer = nullptr;
#endif

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
#ifdef CKPT_FUZZ_SEALED
  checkpoint = scratch_dir("checkpoint_metadata_sealed") / "ckpt";
#else
  checkpoint = scratch_dir("checkpoint_metadata") / "ckpt";
#endif
  save_sample(checkpoint,
              {{"notes", ckpt::Value::json({{"lr", 0.01}, {"steps", 10}})}});
#ifdef CKPT_FUZZ_SEALED
  sealer = new Sealer(checkpoint);
#else
  fs::remove(checkpoint / ckpt::kChecksumsFile);
#endif
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  write_file(checkpoint / ckpt::kCheckpointMetadataFile, data, size);
#ifdef CKPT_FUZZ_SEALED
  sealer->reseal(ckpt::kCheckpointMetadataFile, data, size);
#endif
  bool read = false;
  expect_ckpt_errors("read_checkpoint_info", [&] {
    ckpt::CheckpointInfo info = ckpt::read_checkpoint_info(checkpoint);
    for (const auto& [name, typestr] : info.item_handlers) {
      (void)info.typestr_of(name);
      (void)info.folder_of(name);
    }
    for (const std::string& name : ckpt::list_checkpointables(info)) {
      (void)ckpt::unclaimed_typestr(info, name);
    }
    read = true;
  });
  // Handler resolution from the recorded typestrs, and the load itself
  // (only when the metadata was read: the load would refuse it again).
  if (read) {
    expect_ckpt_errors("load_checkpointables", [] {
      (void)ckpt::load_checkpointables(checkpoint, {{"notes", ckpt::Value()}});
    });
  }
  return 0;
}
