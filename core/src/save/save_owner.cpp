#include "save/save_owner.h"

#include <ckpt/layout.h>
#include <ckpt/sdk/files.h>
#include <ckpt/sdk/json.h>

#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "format/names.h"
#include "save/atomic_commit.h"
#include "util/logging.h"

namespace fs = std::filesystem;

namespace ckpt::internal {

namespace {

// A record is a few hundred bytes; anything larger is not one.
constexpr uintmax_t kMaxRecordBytes = 4096;

std::string describe(const SaveOwner& owner) {
  return "pid " + std::to_string(owner.pid) + " on host " +
         (owner.host.empty() ? std::string("unknown") : owner.host);
}

}  // namespace

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
  const std::optional<TemporaryNameOwner> named =
      owner_in_temporary_name(folder.filename());
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

bool remove_if_dead(const fs::path& folder, OwnerState state,
                    const std::string& description) {
  if (state != OwnerState::kGone) return false;
  log(CKPT_LOG_INFO, "removing " + folder.string() +
                         ", left by a save that died (" + description + ")");
  remove_quietly(folder);
  return true;
}

void remove_dead_temporaries_of(const fs::path& final_path) {
  const std::string final_name = final_path.filename().string();
  std::vector<fs::path> ours;
  std::error_code ec;
  for (fs::directory_iterator it(final_path.parent_path(), ec), end;
       !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (is_temporary_of(name, final_name)) {
      ours.push_back(it->path());
    }
  }
  static std::mutex mutex;
  static std::set<std::string> reported;
  for (const fs::path& folder : ours) {
    const FolderOwner owner = owner_of_temporary(folder);
    if (remove_if_dead(folder, owner.state, owner.description) ||
        owner.state == OwnerState::kAlive) {
      continue;
    }
    std::lock_guard<std::mutex> lock(mutex);
    if (reported.insert(folder.string()).second) {
      log(CKPT_LOG_WARNING,
          "keeping " + folder.string() +
              ", a temporary folder of an earlier "
              "save to " +
              final_path.string() + " (" + owner.description +
              "): it may still be written; remove it once its save is known "
              "to be dead");
    }
  }
}

}  // namespace ckpt::internal
