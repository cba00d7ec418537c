#include "test_util.h"

#include <ckpt/layout.h>
#include <ckpt/sdk/dtype.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "format/checksums.h"

namespace ckpt::test {

TempDir::TempDir() {
  std::string pattern =
      (fs::temp_directory_path() / "ckpt-test-XXXXXX").string();
  if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
  fs::remove_all(path_, ec);
}

std::vector<std::string> folder_entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<DType> all_dtypes() {
  std::vector<DType> out;
  for (const sdk::DTypeInfo& d : sdk::kDTypes) {
    out.push_back(static_cast<DType>(d.dtype));
  }
  return out;
}

fs::path test_plugin(const std::string& file_name) {
  return fs::path(CKPT_TEST_PLUGIN_DIR) / file_name;
}

void load_toy_plugin() {
  static std::once_flag once;
  std::call_once(once, [] { load_plugin(test_plugin("toy_handlers.so")); });
}

Value toy(const std::string& tag, const std::string& data) {
  return Value::dict({{"type", tag}, {"data", data}});
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_text(const fs::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary);
  out << text;
}

CommandResult run_command(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return result;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) {
    result.output.append(buffer, n);
  }
  int status = ::pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

CallContext call_for(const fs::path& dir, const std::string& name) {
  CallContext call;
  call.checkpointable_name = name;
  call.directory = dir;
  return call;
}

void save_with(const Handler& handler, const fs::path& dir, const Value& value,
               const std::string& name) {
  fs::create_directories(dir);
  handler.save(call_for(dir, name), value).get();
}

Value load_with(const Handler& handler, const fs::path& dir,
                const Value* abstract_value, const std::string& name) {
  return handler.load(call_for(dir, name), abstract_value).get();
}

void reseal_checksums(const fs::path& checkpoint) {
  const fs::path file = checkpoint / kChecksumsFile;
  fs::remove(file);
  std::map<std::string, internal::SelfCheckedFiles> self_checked;
  for (const auto& entry : fs::directory_iterator(checkpoint)) {
    if (entry.is_directory() && fs::exists(entry.path() / "arrays.h5")) {
      self_checked[entry.path().filename().string()] = {{"arrays.h5"},
                                                        {"arrays.process_"}};
    }
  }
  write_text(file, internal::checksums_text(
                       internal::record_checksums(checkpoint, self_checked)));
}

void strip_checksums(const fs::path& checkpoint) {
  fs::remove(checkpoint / kChecksumsFile);
  const fs::path meta = checkpoint / kCheckpointMetadataFile;
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(read_text(meta));
  j.erase("ckpt_format_version");
  fs::remove(meta);
  write_text(meta, j.dump());
}

}  // namespace ckpt::test
