#include "save/save_owner.h"

#include <ckpt/layout.h>
#include <ckpt/sdk/files.h>
#include <ckpt/sdk/json.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

#include "format/checksums.h"

namespace fs = std::filesystem;

namespace ckpt::internal {

namespace {

// A record is a few hundred bytes; anything larger is not one.
constexpr uintmax_t kMaxRecordBytes = 4096;

std::string first_line_of(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

std::string this_host() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "unknown";
  return name;
}

// Field 22 of /proc/<pid>/stat (the process's start time in clock ticks
// after boot); the command name before it may hold spaces and ')'.
std::optional<uint64_t> start_ticks_of(int64_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(in, text)) return std::nullopt;
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22; ++i) {  // fields 3.. follow the name
    if (!(fields >> field)) return std::nullopt;
  }
  try {
    return std::stoull(field);
  } catch (...) {
    return std::nullopt;
  }
}

bool process_runs(int64_t pid, const std::optional<uint64_t>& start_ticks) {
  if (pid <= 0 || pid > INT32_MAX) return false;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return false;
  if (!start_ticks) return true;
  // The pid may have been reused by another process since.
  const std::optional<uint64_t> now = start_ticks_of(pid);
  return !now || *now == *start_ticks;
}

std::string describe(const SaveOwner& owner) {
  return "pid " + std::to_string(owner.pid) + " on host " +
         (owner.host.empty() ? std::string("unknown") : owner.host);
}

// The pid and tag of a name made by temporary_name_suffix.
struct NameOwner {
  int64_t pid = 0;
  std::string tag;
};
std::optional<NameOwner> owner_in_name(const std::string& name) {
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
  return NameOwner{std::stoll(parts[2]), parts[4]};
}

}  // namespace

const SaveOwner& this_owner() {
  static const SaveOwner owner = [] {
    SaveOwner o;
    o.host = this_host();
    o.boot_id = first_line_of("/proc/sys/kernel/random/boot_id");
    o.pid = ::getpid();
    o.start_ticks = start_ticks_of(o.pid);
    return o;
  }();
  return owner;
}

std::string host_boot_tag(const std::string& host, const std::string& boot_id) {
  const std::string both = host + '\n' + boot_id;
  char tag[9];
  std::snprintf(tag, sizeof tag, "%08x",
                static_cast<unsigned>(xxh3_of(both.data(), both.size())));
  return tag;
}

std::string owner_record_text(const SaveOwner& owner) {
  nlohmann::ordered_json j;
  j["host"] = owner.host;
  j["boot_id"] = owner.boot_id;
  j["pid"] = owner.pid;
  if (owner.start_ticks) j["start_ticks"] = *owner.start_ticks;
  return j.dump() + "\n";
}

std::optional<SaveOwner> parse_owner_record(const std::string& text) {
  try {
    const nlohmann::json j = sdk::parse_json_from_disk(text, kOwnerFile);
    SaveOwner owner;
    owner.host = j.at("host").get<std::string>();
    owner.boot_id = j.at("boot_id").get<std::string>();
    owner.pid = j.at("pid").get<int64_t>();
    if (j.contains("start_ticks")) {
      owner.start_ticks = j.at("start_ticks").get<uint64_t>();
    }
    return owner;
  } catch (const std::exception&) {
    return std::nullopt;  // not a record: judged by the folder's name
  }
}

FolderOwner owner_of_temporary(const fs::path& folder) {
  const SaveOwner& me = this_owner();
  FolderOwner out;
  std::optional<SaveOwner> recorded;
  std::error_code ec;
  const fs::path record = folder / kOwnerFile;
  const auto status = fs::symlink_status(record, ec);
  if (!ec && fs::is_regular_file(status) &&
      fs::file_size(record, ec) <= kMaxRecordBytes && !ec) {
    std::string text;
    try {
      if (sdk::read_file_if_exists(record.string(), text)) {
        recorded = parse_owner_record(text);
      }
    } catch (const std::exception&) {
      // unreadable: judged by the name below
    }
  }
  if (recorded) {
    out.owner = recorded;
    out.description = describe(*recorded);
    if (recorded->host != me.host) {
      out.state = OwnerState::kOtherHost;
    } else if (recorded->boot_id != me.boot_id) {
      out.state = OwnerState::kOtherBoot;
      out.description += " before its last boot";
    } else {
      out.state = process_runs(recorded->pid, recorded->start_ticks)
                      ? OwnerState::kAlive
                      : OwnerState::kGone;
    }
    return out;
  }
  // No record (the save died between making the folder and writing it):
  // the name says the pid and, as a tag, host and boot.
  const std::optional<NameOwner> named = owner_in_name(folder.filename());
  if (!named) {
    out.description = "unknown owner (no " + std::string(kOwnerFile) + ")";
    return out;
  }
  SaveOwner partial;
  partial.pid = named->pid;
  out.owner = partial;
  if (named->tag != host_boot_tag(me.host, me.boot_id)) {
    out.state = OwnerState::kOtherHost;
    out.description = "pid " + std::to_string(named->pid) +
                      " on another host or boot (tag " + named->tag + ")";
    return out;
  }
  partial.host = me.host;
  out.owner = partial;
  out.description = describe(partial);
  out.state = process_runs(named->pid, std::nullopt) ? OwnerState::kAlive
                                                     : OwnerState::kGone;
  return out;
}

std::string temporary_name_suffix() {
  static std::atomic<uint64_t> counter{0};
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const SaveOwner& me = this_owner();
  std::ostringstream unique;
  unique << "-"
         << std::chrono::duration_cast<std::chrono::nanoseconds>(now).count()
         << "-" << ::getpid() << "-" << counter++ << "-"
         << host_boot_tag(me.host, me.boot_id);
  return unique.str();
}

}  // namespace ckpt::internal
