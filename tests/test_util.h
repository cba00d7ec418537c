// Helpers shared by the tests.
#ifndef CKPT_TESTS_TEST_UTIL_H_
#define CKPT_TESTS_TEST_UTIL_H_

#include <ckpt/handler.h>
#include <ckpt/plugins.h>
#include <ckpt/value.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace ckpt::test {

namespace fs = std::filesystem;

// A fresh folder under the system temp folder, removed at scope end.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

// The names of the entries of folder `dir`, sorted.
std::vector<std::string> folder_entries(const fs::path& dir);

// Every dtype ckpt knows, in the order of the one dtype table
// (ckpt/sdk/dtype.h).
std::vector<DType> all_dtypes();

// The path of a test plugin built into the tests' build folder.
fs::path test_plugin(const std::string& file_name);

// Loads tests/test_plugins/toy_handlers.so once (types only, no registrations).
void load_toy_plugin();

// A toy-tagged value {"type": tag, "data": data}.
Value toy(const std::string& tag, const std::string& data = "");

// The message of the E that f() throws. Any other exception escapes, and
// no exception at all is a std::logic_error: either fails the test.
template <class E, class F>
std::string message_of(F f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  throw std::logic_error("expected an exception, none was thrown");
}

std::string read_text(const fs::path& file);
void write_text(const fs::path& file, const std::string& text);

// Rewrites the _CHECKSUMS of checkpoint `checkpoint` to match its files as
// they are now (each pytree's arrays.h5 recorded by size, as its handler
// checks it): a deliberately crafted checkpoint, so that tests reach the
// checks behind the checksums.
void reseal_checksums(const fs::path& checkpoint);

// Makes `checkpoint` one written before checksums (by Orbax or an older
// ckpt): removes _CHECKSUMS and the format version that requires it, so
// that tests reach the handlers' own checks of hand-edited files.
void strip_checksums(const fs::path& checkpoint);

// Runs a command through the shell; returns its exit status and stdout.
struct CommandResult {
  int status = -1;
  std::string output;
};
CommandResult run_command(const std::string& command);

// A call context for checkpointable `name` in folder `dir` (primary host).
CallContext call_for(const fs::path& dir, const std::string& name);

// Save `value` with `handler` into `dir` (created) and wait; then load.
void save_with(const Handler& handler, const fs::path& dir, const Value& value,
               const std::string& name = "item");
Value load_with(const Handler& handler, const fs::path& dir,
                const Value* abstract_value = nullptr,
                const std::string& name = "item");

}  // namespace ckpt::test

#endif  // CKPT_TESTS_TEST_UTIL_H_
