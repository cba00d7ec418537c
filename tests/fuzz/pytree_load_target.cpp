// Fuzz targets: a pytree checkpoint, loaded through ckpt::load, with one of
// its files replaced by the input and _CHECKSUMS resealed to match (a
// crafted checkpoint: the checks behind the checksums are what is fuzzed).
//
//  - pytree_metadata_load (CKPT_FUZZ_FILE="_METADATA"): the tree's
//    _METADATA; arrays.h5 is the seed of pytree_arrays saved with the
//    sample tree (corpus/pytree_arrays/sample_tree.h5). Also runs
//    ckpt::metadata (the abstract tree from _METADATA alone).
//  - pytree_arrays (CKPT_FUZZ_FILE="arrays.h5"): the array file; _METADATA
//    is the seed corpus/pytree_metadata_load/sample_tree, and with it the
//    size and structure checksum of the array file it was saved with, which the
//    plugin checks before any HDF5 call sees the file (Debian's libhdf5 crashes
//    on some damaged files).
//
// Each input first goes through the plugin's own first step, compiled into
// this target: parse_tree_metadata for _METADATA; for arrays.h5, opening
// it with ArrayFileReader, which checks its size and structure checksum
// against the seed _METADATA's record (and then opens it with HDF5). What
// that step refuses, the load would refuse at the same step, behind
// checksums that match: such an input is counted as "refused by the
// parser" and skips the full load, which costs a hundred times more (the
// whole tree's _METADATA parsed again, plugin calls). Every input it
// accepts is loaded in full.
#include <ckpt/checkpoint.h>
#include <ckpt/layout.h>
#include <ckpt/sdk/error.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "../../plugins/pytree/hdf5_file.h"
#include "../../plugins/pytree/tree_metadata.h"
#include "fuzz_util.h"

#if !defined(CKPT_FUZZ_FILE) || !defined(CKPT_FUZZ_CORPUS)
#error "define CKPT_FUZZ_FILE and CKPT_FUZZ_CORPUS"
#endif

namespace {

using namespace ckpt_fuzz;

fs::path checkpoint;
Sealer* sealer = nullptr;
const std::string kFile = std::string("state/") + CKPT_FUZZ_FILE;

#ifdef CKPT_FUZZ_METADATA
bool parser_refuses(const uint8_t* data, size_t size) {
  try {
    (void)ckpt_pytree::parse_tree_metadata(
        std::string(reinterpret_cast<const char*>(data), size),
        "fuzz/_METADATA");
    return false;
  } catch (const ckpt::sdk::Error&) {
    return true;
  }
}
#else
// The seed _METADATA's record of the array file's structure.
const ckpt_pytree::ArrayFileStructure* structure = nullptr;

// After the input was written as the array file.
bool parser_refuses(const uint8_t*, size_t) {
  try {
    ckpt_pytree::ArrayFileReader reader((checkpoint / kFile).string(),
                                        structure, "fuzz");
    return false;
  } catch (const ckpt::sdk::Error&) {
    return true;
  }
}
#endif

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  checkpoint = scratch_dir(CKPT_FUZZ_TAG) / "ckpt";
  save_sample(checkpoint, {{"state", sample_tree()}});
  // HDF5 records times in the array file, so no two saves give the same
  // bytes: the state/ the seeds match is the committed pair of one save.
  const fs::path corpus = CKPT_FUZZ_CORPUS;
  const fs::path metadata = corpus / "pytree_metadata_load" / "sample_tree";
  const fs::path arrays = corpus / "pytree_arrays" / "sample_tree.h5";
  if (fs::exists(metadata) && fs::exists(arrays)) {
    write_file(checkpoint / "state" / "_METADATA", read_file(metadata));
    write_file(checkpoint / "state" / "arrays.h5", read_file(arrays));
  }
  sealer = new Sealer(checkpoint);
#ifndef CKPT_FUZZ_METADATA
  ckpt_pytree::TreeMetadata saved = ckpt_pytree::parse_tree_metadata(
      read_file(checkpoint / "state" / "_METADATA"), "seed _METADATA");
  if (!saved.has_structure) {
    std::fprintf(stderr, "ckpt fuzz: the seed _METADATA has no structure\n");
    std::abort();
  }
  structure = new ckpt_pytree::ArrayFileStructure(saved.structure);
#endif
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
#ifdef CKPT_FUZZ_METADATA
  if (parser_refuses(data, size)) {
    count_refused();
    return 0;
  }
  write_file(checkpoint / kFile, data, size);
#else
  write_file(checkpoint / kFile, data, size);
  if (parser_refuses(data, size)) {
    count_refused();
    return 0;
  }
#endif
  sealer->reseal(kFile, data, size);
  expect_ckpt_errors("load", [] { (void)ckpt::load(checkpoint); });
#ifdef CKPT_FUZZ_METADATA
  expect_ckpt_errors("metadata", [] { (void)ckpt::metadata(checkpoint); });
#endif
  return 0;
}
