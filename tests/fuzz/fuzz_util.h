// Shared by the fuzz targets and the seed generator: scratch folders on
// /dev/shm, the sample checkpoints every target starts from, resealing
// _CHECKSUMS after a file was replaced, and the outcome check (a ckpt call
// on damaged input may only throw ckpt::Error).
#ifndef CKPT_TESTS_FUZZ_FUZZ_UTIL_H_
#define CKPT_TESTS_FUZZ_FUZZ_UTIL_H_

#include <ckpt/checkpoint.h>
#include <ckpt/errors.h>
#include <ckpt/value.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <string_view>

#include "format/checksums.h"

namespace ckpt_fuzz {

namespace fs = std::filesystem;

// A fresh folder /dev/shm/ckpt-fuzz-<tag>-<pid> (the system temp folder
// when /dev/shm is missing), removed at exit; first removes those of the
// same tag left by processes that no longer run.
fs::path scratch_dir(const std::string& tag);

void write_file(const fs::path& file, const void* data, size_t size);
inline void write_file(const fs::path& file, std::string_view text) {
  write_file(file, text.data(), text.size());
}
std::string read_file(const fs::path& file);

// The sample checkpointables the seeds and the targets' prepared
// checkpoints are made of. Deterministic: the same bytes on every run.
//
// A pytree: arrays with their own dataset and packed ones, several dtypes,
// 0-d and zero-size arrays, scalars of every kind, strings, none, nested
// dicts and lists, empty containers, keys that need escaping.
ckpt::Value sample_tree();
// A smaller pytree: a list at the root, a few leaves.
ckpt::Value small_tree();
// A JSON document: nesting, unicode, extreme numbers.
nlohmann::json sample_json();

// Saves `checkpointables` at `path` (replacing it) with the options the
// samples use: no fsync, arrays of 64 bytes and more in their own dataset.
void save_sample(const fs::path& path, const ckpt::Checkpointables& items);

// A checkpoint's _CHECKSUMS, kept in memory so that a target rewrites it
// for one replaced file without walking the checkpoint again.
class Sealer {
 public:
  // Records `checkpoint` as it is now (every pytree's arrays.h5 by size,
  // as its handler checks it itself).
  explicit Sealer(const fs::path& checkpoint);
  // Updates the record of file `relative` to `data` and rewrites
  // _CHECKSUMS.
  void reseal(const std::string& relative, const void* data, size_t size);

 private:
  fs::path checkpoint_;
  ckpt::internal::ChecksumRecord record_;
};

// Rewrites _CHECKSUMS of `checkpoint` to match its files as they are now
// (as tests/test_util.cpp's reseal_checksums).
void reseal_checksums(const fs::path& checkpoint);

// Counts an expected failure (a ckpt::Error) by kind; printed at exit.
// With CKPT_FUZZ_VERBOSE set, prints each error's message too.
void count_error(const ckpt::Error& error);
void count_success();
// Counts an input the format's parser refused in the target itself, before
// any file was written (see the targets' comments).
void count_refused();

// Runs f(). A ckpt::Error is an expected outcome for damaged input; any
// other exception breaks ckpt's contract ("every failure is a
// ckpt::Error") and aborts, so that libFuzzer keeps the input.
template <class F>
void expect_ckpt_errors(const char* what, F&& f) {
  try {
    f();
    count_success();
  } catch (const ckpt::Error& e) {
    count_error(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ckpt fuzz: %s threw a non-ckpt exception: %s\n", what,
                 e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "ckpt fuzz: %s threw a non-ckpt exception\n", what);
    std::abort();
  }
}

}  // namespace ckpt_fuzz

#endif  // CKPT_TESTS_FUZZ_FUZZ_UTIL_H_
