// Fuzz targets: a pytree checkpoint, loaded through ckpt::load, with one of
// its files replaced by the input and _CHECKSUMS resealed to match (a
// crafted checkpoint: the checks behind the checksums are what is fuzzed).
// The seeds of the three targets are files of one save (corpus_gen):
// arrays.h5 is corpus/pytree_arrays/sample_tree.h5, and the records of it
// are corpus/pytree_tree_index_load/sample_tree and (marked format 2)
// corpus/pytree_metadata_load/sample_tree.
//
//  - pytree_tree_index_load (CKPT_FUZZ_FILE="_TREE_INDEX",
//    CKPT_FUZZ_INDEX): the tree's index, from which loads read the tree.
//    Also runs ckpt::metadata (the abstract tree from the index alone).
//  - pytree_metadata_load (CKPT_FUZZ_FILE="_METADATA", CKPT_FUZZ_METADATA):
//    the tree's _METADATA, in a checkpoint without _TREE_INDEX (as ckpt
//    wrote them before format 3, so that loads read _METADATA). Also runs
//    ckpt::metadata.
//  - pytree_arrays (CKPT_FUZZ_FILE="arrays.h5"): the array file, with the
//    seed index, and with it the size and structure checksum of the array
//    file it was saved with, which the plugin checks before any HDF5 call
//    sees the file (Debian's libhdf5 crashes on some damaged files).
//
// Each input first goes through the plugin's own first step, compiled into
// this target: decode_tree_index or parse_tree_metadata for the records;
// for arrays.h5, opening it with ArrayFileReader, which checks its size and
// structure checksum against the seed index's record (and then opens it
// with HDF5). What that step refuses, the load would refuse at the same
// step, behind checksums that match: such an input is counted as "refused
// by the parser" and skips the full load, which costs a hundred times more.
// Every input it accepts is loaded in full.
#include <ckpt/checkpoint.h>
#include <ckpt/layout.h>
#include <ckpt/sdk/error.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz_util.h"
#include "hdf5/array_file.h"
#include "records/tree_index.h"
#include "records/tree_metadata.h"

#if !defined(CKPT_FUZZ_FILE) || !defined(CKPT_FUZZ_CORPUS)
#error "define CKPT_FUZZ_FILE and CKPT_FUZZ_CORPUS"
#endif

namespace {

using namespace ckpt_fuzz;

fs::path checkpoint;
Sealer* sealer = nullptr;
const std::string kFile = std::string("state/") + CKPT_FUZZ_FILE;

#if defined(CKPT_FUZZ_METADATA)
bool parser_refuses(const uint8_t* data, size_t size) {
  try {
    (void)ckpt::pytree::parse_tree_metadata(
        std::string(reinterpret_cast<const char*>(data), size),
        "fuzz/_METADATA");
    return false;
  } catch (const ckpt::sdk::Error&) {
    return true;
  }
}
#elif defined(CKPT_FUZZ_INDEX)
bool parser_refuses(const uint8_t* data, size_t size) {
  try {
    (void)ckpt::pytree::decode_tree_index(
        std::string_view(reinterpret_cast<const char*>(data), size),
        "fuzz/_TREE_INDEX");
    return false;
  } catch (const ckpt::sdk::Error&) {
    return true;
  }
}
#else
// The seed index's record of the array file's structure.
const ckpt::pytree::ArrayFileStructure* structure = nullptr;

// After the input was written as the array file.
bool parser_refuses(const uint8_t*, size_t) {
  try {
    ckpt::pytree::ArrayFileReader reader((checkpoint / kFile).string(),
                                         structure, "_TREE_INDEX", "fuzz");
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
  const fs::path index = corpus / "pytree_tree_index_load" / "sample_tree";
  const fs::path arrays = corpus / "pytree_arrays" / "sample_tree.h5";
  const fs::path state = checkpoint / "state";
  if (fs::exists(metadata) && fs::exists(index) && fs::exists(arrays)) {
    write_file(state / "_METADATA", read_file(metadata));
    write_file(state / "_TREE_INDEX", read_file(index));
    write_file(state / "arrays.h5", read_file(arrays));
  }
#ifdef CKPT_FUZZ_METADATA
  fs::remove(state / "_TREE_INDEX");  // loads read _METADATA
#endif
  sealer = new Sealer(checkpoint);
#if !defined(CKPT_FUZZ_METADATA) && !defined(CKPT_FUZZ_INDEX)
  ckpt::pytree::TreeMetadata saved = ckpt::pytree::decode_tree_index(
      read_file(state / "_TREE_INDEX"), "seed _TREE_INDEX");
  structure = new ckpt::pytree::ArrayFileStructure(saved.structure);
#endif
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
#if defined(CKPT_FUZZ_METADATA) || defined(CKPT_FUZZ_INDEX)
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
#if defined(CKPT_FUZZ_METADATA) || defined(CKPT_FUZZ_INDEX)
  expect_ckpt_errors("metadata", [] { (void)ckpt::metadata(checkpoint); });
#endif
  return 0;
}
