#include "save/save_owner.h"

#include <ckpt/layout.h>
#include <ckpt/sdk/files.h>
#include <ckpt/sdk/json.h>

#include <string>

#include "format/names.h"

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

}  // namespace ckpt::internal
