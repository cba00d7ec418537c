// A main for the fuzz targets in builds without libFuzzer (gcc, or clang
// without -Dfuzz=true): each argument is a file or a folder of files, and
// every file is handed once to LLVMFuzzerTestOneInput, as libFuzzer's
// -runs=0 does. This is how `meson test --suite fuzz` replays the seeds
// in every build; tools/fuzz.sh fuzzes for real.
//
// A target fails the way it fails under libFuzzer: it aborts (an exception
// that is not a ckpt::Error, a sanitizer report in a sanitizer build).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc,
                                                          char*** argv);

namespace {

namespace fs = std::filesystem;

// The files named by `arg`: itself, or a folder's regular files in name
// order (the order is part of a reproducible run).
std::vector<fs::path> inputs_of(const fs::path& arg) {
  std::error_code error;
  if (!fs::is_directory(arg, error)) return {arg};
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(arg, error)) {
    if (entry.is_regular_file(error)) files.push_back(entry.path());
  }
  if (error) {
    std::fprintf(stderr, "replay: cannot list %s: %s\n", arg.c_str(),
                 error.message().c_str());
    std::exit(2);
  }
  std::sort(files.begin(), files.end());
  return files;
}

bool read_whole(const fs::path& file, std::vector<uint8_t>& bytes) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return false;
  bytes.assign(std::istreambuf_iterator<char>(in),
               std::istreambuf_iterator<char>());
  return !in.bad();
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE_OR_FOLDER...\n", argv[0]);
    return 2;
  }
  size_t replayed = 0;
  std::vector<uint8_t> bytes;
  for (int i = 1; i < argc; ++i) {
    for (const fs::path& file : inputs_of(argv[i])) {
      if (!read_whole(file, bytes)) {
        std::fprintf(stderr, "replay: cannot read %s\n", file.c_str());
        return 2;
      }
      LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
      ++replayed;
    }
  }
  if (replayed == 0) {
    std::fprintf(stderr, "replay: no input in the arguments\n");
    return 2;
  }
  std::printf("replay: %zu inputs, no failure\n", replayed);
  return 0;
}
