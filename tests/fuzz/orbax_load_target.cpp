// Fuzz target orbax_load: a checkpoint Python Orbax wrote (the fixture
// v1 .../pytree_checkpointable_has_metadata, copied), loaded through
// ckpt::load_checkpointables and ckpt::metadata with its root OCDBT
// B+tree node (state/d/<node>, which holds every value inline) replaced by
// the input: the pytree plugin's whole Orbax path (database, node cache,
// zarr.json, chunks, conversion into ckpt values). Orbax's files have no
// checksums of ckpt's to reseal. Seed: the fixture's node
// (corpus/orbax_load/root_node).
#include <ckpt/checkpoint.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.h"

#if !defined(CKPT_FUZZ_ORBAX_FIXTURE)
#error "define CKPT_FUZZ_ORBAX_FIXTURE"
#endif

namespace {

using namespace ckpt_fuzz;

fs::path checkpoint;
fs::path node_file;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  checkpoint = scratch_dir("orbax_load") / "ckpt";
  fs::copy(CKPT_FUZZ_ORBAX_FIXTURE, checkpoint, fs::copy_options::recursive);
  for (const auto& e : fs::directory_iterator(checkpoint / "state" / "d")) {
    node_file = e.path();
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  write_file(node_file, data, size);
  expect_ckpt_errors("load", [] {
    (void)ckpt::load_checkpointables(checkpoint, {{"state", ckpt::Value()}});
  });
  expect_ckpt_errors("metadata",
                     [] { (void)ckpt::metadata(checkpoint, "state"); });
  return 0;
}
