// Fuzz target: the pytree plugin's _METADATA parser
// (plugins/pytree/metadata_reader.cpp, parse_tree_metadata), compiled into
// the target. Fast: no files, no HDF5.
//
// Besides the sanitizers' checks, what parses as ckpt's own format must
// survive being written back: format_tree_metadata of the parsed record
// parses again to a record that formats to the same text.
#include <ckpt/sdk/error.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "records/tree_metadata.h"

namespace {

using ckpt::pytree::TreeMetadata;

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "ckpt fuzz: %s: %s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  TreeMetadata parsed;
  try {
    parsed = ckpt::pytree::parse_tree_metadata(text, "fuzz/_METADATA");
  } catch (const ckpt::sdk::Error&) {
    return 0;  // refused, as it should be for damaged input
  } catch (const std::exception& e) {
    fail("parse_tree_metadata threw a non-sdk::Error exception", e.what());
  }
  if (!ckpt::pytree::is_ckpt_storage_format(parsed.storage_format)) return 0;
  std::string written;
  try {
    written = ckpt::pytree::format_tree_metadata(parsed);
  } catch (const std::exception& e) {
    fail("format_tree_metadata of a parsed _METADATA threw", e.what());
  }
  TreeMetadata again;
  try {
    again =
        ckpt::pytree::parse_tree_metadata(written, "fuzz/_METADATA (written)");
  } catch (const std::exception& e) {
    fail("the _METADATA written from a parsed one does not parse", e.what());
  }
  if (ckpt::pytree::format_tree_metadata(again) != written) {
    fail("_METADATA does not round-trip", written.substr(0, 2000));
  }
  return 0;
}
