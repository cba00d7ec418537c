#include "format/names.h"

#include <ckpt/errors.h>
#include <ckpt/layout.h>
#include <ckpt/sdk/text.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string_view>
#include <vector>

#include "format/checksums.h"
#include "util/process_identity.h"

namespace fs = std::filesystem;

namespace ckpt::internal {

void check_checkpointable_name(const std::string& name, bool allow_reserved) {
  auto fail = [&](const std::string& why) {
    throw InvalidArgumentError("invalid checkpointable name '" +
                               sdk::escaped(name) + "': " + why);
  };
  if (name.empty()) fail("names may not be empty");
  if (!sdk::is_utf8(name)) {
    fail("it is not valid UTF-8 (names are recorded in JSON text)");
  }
  if (!allow_reserved && (name == kMetricsName || name == kAutoName)) {
    fail("the name is reserved");
  }
  if (name == "." || name == "..")
    fail("it would escape the checkpoint folder");
  if (name.find('/') != std::string::npos ||
      name.find('\\') != std::string::npos) {
    fail(
        "it would escape the checkpoint folder (names are one path component)");
  }
  if (name.find('\0') != std::string::npos) fail("it contains a NUL byte");
  if (name[0] == '.') fail("hidden names are not allowed");
  if (name == kCheckpointMetadataFile || name == kMarkerFile ||
      name == kCommitSuccessFile || name == kPytreeMetadataFile) {
    fail("it is the name of a checkpoint file");
  }
  if (is_temporary_name(name)) fail("it is the name of a temporary folder");
}

void check_relative_key(const std::string& path, const std::string& what) {
  const auto refuse = [&](const std::string& why) {
    throw InvalidArgumentError(what + " '" + path.substr(0, 200) + "' " + why);
  };
  if (path.empty()) refuse("is empty");
  if (path.size() > 1024) refuse("is longer than 1024 bytes");
  if (path.find('\0') != std::string::npos) refuse("holds a NUL byte");
  if (path.front() == '/') refuse("is absolute");
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    const std::string_view part(path.data() + start, end - start);
    if (part.empty() || part == "." || part == "..") {
      refuse("has an empty, '.' or '..' component");
    }
    start = end + 1;
  }
}

bool is_temporary_name(const std::string& name) {
  return name.find(kTemporaryInfix) != std::string::npos;
}

namespace {

// "-<nanoseconds>-<pid>-<counter>-<host boot tag>".
std::string temporary_name_suffix() {
  static std::atomic<uint64_t> counter{0};
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const ProcessIdentity& me = this_process();
  std::ostringstream unique;
  unique << "-"
         << std::chrono::duration_cast<std::chrono::nanoseconds>(now).count()
         << "-" << ::getpid() << "-" << counter++ << "-"
         << host_boot_tag(me.host, me.boot_id);
  return unique.str();
}

}  // namespace

namespace {

// "~<16 hex digits>": what ends a final name shortened to fit.
std::string name_hash(const std::string& name) {
  char hash[18];
  std::snprintf(
      hash, sizeof hash, "~%016llx",
      static_cast<unsigned long long>(xxh3_of(name.data(), name.size())));
  return hash;
}

}  // namespace

fs::path temporary_path_for(const fs::path& final_path) {
  const std::string suffix =
      std::string(kTemporaryInfix) + temporary_name_suffix();
  std::string name = final_path.filename().string();
  constexpr size_t kNameMax = 255;
  if (name.size() + suffix.size() > kNameMax) {
    name = name.substr(0, kNameMax - suffix.size() - 17) + name_hash(name);
  }
  return final_path.parent_path() / (name + suffix);
}

bool is_temporary_of(const std::string& name, const std::string& final_name) {
  const size_t at = name.rfind(kTemporaryInfix);
  if (at == std::string::npos) return false;
  const std::string stem = name.substr(0, at);
  if (stem == final_name) return true;
  const std::string hash = name_hash(final_name);
  return stem.size() > hash.size() &&
         stem.compare(stem.size() - hash.size(), hash.size(), hash) == 0 &&
         final_name.compare(0, stem.size() - hash.size(), stem, 0,
                            stem.size() - hash.size()) == 0;
}

std::string host_boot_tag(const std::string& host, const std::string& boot_id) {
  const std::string both = host + '\n' + boot_id;
  char tag[9];
  std::snprintf(tag, sizeof tag, "%08x",
                static_cast<unsigned>(xxh3_of(both.data(), both.size())));
  return tag;
}

std::optional<TemporaryNameOwner> owner_in_temporary_name(
    const std::string& name) {
  const size_t at = name.rfind(kTemporaryInfix);
  if (at == std::string::npos) return std::nullopt;
  std::vector<std::string> parts;
  std::istringstream rest(
      name.substr(at + std::string(kTemporaryInfix).size()));
  std::string part;
  while (std::getline(rest, part, '-')) parts.push_back(part);
  // "", nanoseconds, pid, counter, tag
  if (parts.size() != 5 || !parts[0].empty() || parts[4].size() != 8) {
    return std::nullopt;
  }
  for (size_t i = 1; i <= 3; ++i) {
    if (parts[i].empty() || parts[i].size() > 19 ||
        parts[i].find_first_not_of("0123456789") != std::string::npos) {
      return std::nullopt;
    }
  }
  return TemporaryNameOwner{std::stoll(parts[2]), parts[4]};
}

}  // namespace ckpt::internal
