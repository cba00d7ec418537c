// Fuzz target orbax_format: the decoders of Python Orbax's storage in the
// pytree plugin (plugins/pytree/orbax), on bytes in memory. The first byte
// picks one:
//   0: an OCDBT manifest (decode_manifest);
//   1: an OCDBT B+tree node (decode_btree_node);
//   2: a zarr v3 array: zarr.json, a NUL, then the bytes every chunk key
//      reads as (parse_array_metadata, then read_array of arrays up to
//      2^16 elements);
//   3: the same for a zarr v2 array: .zarray, a NUL, the chunk bytes
//      (parse_zarray, then read_array).
// Each may only throw the decoders' Damaged or Unsupported, or sdk::Error
// (JSON nested too deep); anything else, a crash or a sanitizer report is
// a finding. Seeds (corpus/orbax_format/) are files of the Orbax fixtures
// with their selector byte.
#include <ckpt/sdk/dtype.h>
#include <ckpt/sdk/error.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "orbax/ocdbt_format.h"
#include "orbax/zarr_array.h"

namespace {

void run(std::string_view input) {
  if (input.empty()) return;
  const uint8_t selector = static_cast<uint8_t>(input[0]) % 4;
  input.remove_prefix(1);
  if (selector == 0) {
    (void)ckpt::pytree::ocdbt::decode_manifest(input);
    return;
  }
  if (selector == 1) {
    (void)ckpt::pytree::ocdbt::decode_btree_node(input, "base/", 1u << 24);
    return;
  }
  const size_t nul = input.find('\0');
  const std::string_view json = input.substr(0, nul);
  const std::string chunk(nul == std::string_view::npos
                              ? std::string_view()
                              : input.substr(nul + 1));
  const ckpt::pytree::zarr::ArrayMetadata array =
      selector == 2 ? ckpt::pytree::zarr::parse_array_metadata(json)
                    : ckpt::pytree::zarr::parse_zarray(json);
  uint64_t elements = 1;
  for (int64_t d : array.shape) elements *= static_cast<uint64_t>(d);
  if (elements > (1u << 16)) return;
  std::vector<unsigned char> out(elements * ckpt::sdk::dtype_size(array.dtype) +
                                 1);
  ckpt::pytree::zarr::read_array(
      array, [&](const std::string&) { return chunk; },
      /*require_every_chunk=*/false, out.data());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    run(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const ckpt::pytree::Damaged&) {
  } catch (const ckpt::pytree::Unsupported&) {
  } catch (const ckpt::sdk::Error&) {
  }
  return 0;
}
