// Fuzz target: _CHECKSUMS, parsed by ckpt::internal::parse_checksums.
//
// Each input is parsed as it is, and once more with its last "end" line
// replaced by the correct one (XXH3-64 of every byte above it), so that
// the fuzzer reaches the record lines behind the whole-file checksum.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "fuzz_util.h"

namespace {

using namespace ckpt_fuzz;

void parse(std::string_view text) {
  expect_ckpt_errors("parse_checksums", [&] {
    ckpt::internal::ChecksumRecord record =
        ckpt::internal::parse_checksums(text, "fuzz/_CHECKSUMS");
    for (const auto& r : record.records) (void)record.find(r.path);
    // What parses is what a save writes: printing it back and parsing that
    // gives the same records.
    std::string again = ckpt::internal::checksums_text(record);
    ckpt::internal::ChecksumRecord back =
        ckpt::internal::parse_checksums(again, "fuzz/_CHECKSUMS (printed)");
    if (ckpt::internal::checksums_text(back) != again) {
      std::fprintf(stderr, "ckpt fuzz: _CHECKSUMS does not round-trip\n");
      std::abort();
    }
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  parse(text);
  // The body: everything before the last line starting with "end ".
  size_t end = text.rfind("\nend ");
  std::string body(end == std::string_view::npos ? text
                                                 : text.substr(0, end + 1));
  if (!body.empty() && body.back() != '\n') body += '\n';
  char line[64];
  std::snprintf(line, sizeof line, "end %016llx\n",
                static_cast<unsigned long long>(
                    ckpt::internal::xxh3_of(body.data(), body.size())));
  parse(body + line);
  return 0;
}
