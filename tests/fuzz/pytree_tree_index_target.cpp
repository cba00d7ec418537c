// Fuzz target: the pytree plugin's tree index decoder
// (plugins/pytree/tree_index.cpp, decode_tree_index), compiled into the
// target. Fast: no files, no HDF5.
//
// Besides the sanitizers' checks, what decodes must survive being written
// back: encode_tree_index of the decoded record decodes again, to a record
// that encodes to the same bytes (an input may spell numbers or the
// dataset table otherwise than ckpt writes them).
#include <ckpt/sdk/error.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include "records/tree_index.h"

namespace {

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "ckpt fuzz: %s: %s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  ckpt::pytree::TreeMetadata decoded;
  try {
    decoded = ckpt::pytree::decode_tree_index(bytes, "fuzz/_TREE_INDEX");
  } catch (const ckpt::sdk::Error&) {
    return 0;  // refused, as it should be for damaged input
  } catch (const std::exception& e) {
    fail("decode_tree_index threw a non-sdk::Error exception", e.what());
  }
  std::string written;
  try {
    written = ckpt::pytree::encode_tree_index(decoded);
  } catch (const std::exception& e) {
    fail("encode_tree_index of a decoded index threw", e.what());
  }
  ckpt::pytree::TreeMetadata again;
  try {
    again =
        ckpt::pytree::decode_tree_index(written, "fuzz/_TREE_INDEX (written)");
  } catch (const std::exception& e) {
    fail("the index written from a decoded one does not decode", e.what());
  }
  if (ckpt::pytree::encode_tree_index(again) != written) {
    fail("the index does not round-trip", std::to_string(size) + " bytes");
  }
  return 0;
}
