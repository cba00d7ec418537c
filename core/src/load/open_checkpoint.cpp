#include "load/open_checkpoint.h"

#include <ckpt/errors.h>
#include <ckpt/sdk/json.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>

#include "format/checkpoint_metadata.h"
#include "format/names.h"
#include "util/error_conversion.h"

namespace fs = std::filesystem;

namespace ckpt {

CheckpointInfo read_checkpoint_info(const fs::path& path) {
  return internal::with_opened_checkpoint(
      path, [](const internal::OpenedCheckpoint& c) { return c.info; });
}

bool check_checkpointable_bytes(const fs::path& path, const std::string& name) {
  return internal::with_errors_converted([&] {
    internal::check_checkpointable_name(name, true);
    return internal::with_opened_checkpoint(
        path,
        [&](const internal::OpenedCheckpoint& c) { return c.check(name); });
  });
}

std::vector<std::string> list_checkpointables(const fs::path& path) {
  return list_checkpointables(read_checkpoint_info(path));
}

}  // namespace ckpt

namespace ckpt::internal {

namespace {

bool holds_a_file(const fs::path& folder) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    if (entry.symlink_status(ec).type() == fs::file_type::regular) return true;
  }
  return false;
}

// Reads _CHECKSUMS (when there is one) and checks the checkpoint's own
// files against it.
std::optional<ChecksumRecord> read_checksums(const CheckpointDir& dir) {
  constexpr size_t kLimit = size_t{256} << 20;
  std::optional<std::string> text = dir.read_file(kChecksumsFile, kLimit);
  if (!text) return std::nullopt;
  ChecksumRecord record =
      parse_checksums(*text, (dir.path() / kChecksumsFile).string());
  check_against_record(dir, record, "");
  return record;
}

InvalidLayoutError invalid_checkpoint(const fs::path& path,
                                      const std::string& why) {
  return InvalidLayoutError("invalid checkpoint " + path.string() + ": " + why);
}

// Older Orbax (layout v0) wrote no _CHECKPOINT_METADATA: such a checkpoint
// is a flat pytree (_METADATA at its root) or folders of checkpointables,
// with nothing recorded about them. The v1 layout (the marker) and ckpt
// always write it. Sets info.layout and returns true when `dir` is one.
bool is_v0_without_metadata(const CheckpointDir& dir, CheckpointInfo& info) {
  if (is_pytree_folder(dir.root())) {
    info.layout = LayoutVersion::kV0Flat;
    return true;
  }
  // Empty folders are what a save that never got far leaves behind; a
  // checkpointable that was written holds at least one file. Folders that
  // are checkpoints themselves make this a root of steps.
  bool holds_checkpointables = false;
  bool holds_checkpoints = false;
  for (const std::string& name : list_checkpointables_in(dir.root(), info)) {
    std::error_code ec;
    holds_checkpoints |=
        fs::exists(dir.root() / name / kCheckpointMetadataFile, ec);
    holds_checkpointables |= holds_a_file(dir.root() / name);
  }
  if (holds_checkpointables && !holds_checkpoints) {
    info.layout = LayoutVersion::kV0Composite;
    return true;
  }
  return false;
}

// Reads _CHECKSUMS (checking the checkpoint's own files against it) into
// `out`, and returns the text of _CHECKPOINT_METADATA, if any.
std::optional<std::string> read_records(const fs::path& path,
                                        OpenedCheckpoint& out) {
  constexpr size_t kMetadataLimit = size_t{64} << 20;
  const CheckpointDir& dir = *out.dir;
  std::optional<std::string> text;
  with_errors_converted([&] {
    out.checksums = read_checksums(dir);
    struct stat st;
    if (!out.checksums &&
        ::fstatat(dir.fd(), kCheckpointMetadataFile, &st,
                  AT_SYMLINK_NOFOLLOW) == 0 &&
        !S_ISREG(st.st_mode)) {
      throw invalid_checkpoint(
          path, std::string(kCheckpointMetadataFile) + " is not a file");
    }
    text = dir.read_file(kCheckpointMetadataFile, kMetadataLimit);
  });
  return text;
}

// _CHECKPOINT_METADATA's text as a JSON object; damage is DataLossError in
// a checkpoint with checksums, else InvalidLayoutError.
nlohmann::json parse_metadata(const fs::path& path, const std::string& text,
                              bool has_checksums) {
  const std::string shown = (path / kCheckpointMetadataFile).string();
  nlohmann::json j;
  with_errors_converted([&] {
    sdk::check_json_depth(text, shown);
    j = nlohmann::json::parse(text, nullptr, false);
  });
  if (j.is_discarded() || !j.is_object()) {
    if (has_checksums) {
      throw DataLossError(shown + " is damaged: not a JSON object");
    }
    throw invalid_checkpoint(
        path, std::string(kCheckpointMetadataFile) + " is not a JSON object");
  }
  return j;
}

// A format newer than this ckpt reads is InvalidLayoutError; a format that
// records checksums without a _CHECKSUMS is DataLossError.
void check_format_version(const fs::path& path, const CheckpointInfo& info,
                          bool has_checksums) {
  if (info.format_version && *info.format_version > kCheckpointFormatVersion) {
    throw invalid_checkpoint(
        path, "it was written in ckpt format " +
                  std::to_string(*info.format_version) +
                  ", newer than this ckpt reads (up to " +
                  std::to_string(kCheckpointFormatVersion) + ")");
  }
  if (!has_checksums && info.format_version &&
      *info.format_version >= kCheckpointFormatVersion) {
    throw DataLossError(
        "checkpoint " + path.string() + " is damaged: " + kChecksumsFile +
        " is missing (ckpt format " + std::to_string(*info.format_version) +
        " records every file's checksum there)");
  }
}

// Validates the layout of the folder `dir` opened and reads
// _CHECKPOINT_METADATA and _CHECKSUMS through it.
OpenedCheckpoint open_checkpoint(std::shared_ptr<const CheckpointDir> dir_ptr) {
  const fs::path& path = dir_ptr->path();
  // "<tmp>/" and "<tmp>/." name the temporary folder too.
  fs::path named = path.lexically_normal();
  if (!named.has_filename()) named = named.parent_path();
  OpenedCheckpoint out;
  out.dir = std::move(dir_ptr);
  if (is_temporary_name(named.filename().string())) {
    throw invalid_checkpoint(
        path,
        "incomplete checkpoint: a temporary folder of a save that never "
        "committed");
  }
  const CheckpointDir& dir = *out.dir;
  CheckpointInfo& info = out.info;
  info.path = path;
  const std::optional<std::string> text = read_records(path, out);
  struct stat st;
  const bool has_marker =
      ::fstatat(dir.fd(), kMarkerFile, &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (!text) {
    if (!has_marker && !out.checksums && is_v0_without_metadata(dir, info)) {
      return out;
    }
    throw invalid_checkpoint(
        path, std::string("no ") + kCheckpointMetadataFile +
                  " (not a checkpoint, or one whose save never committed)");
  }
  const nlohmann::json j =
      parse_metadata(path, *text, out.checksums.has_value());
  if (has_marker) {
    info.layout = LayoutVersion::kV1;
  } else if (is_pytree_folder(dir.root()) ||
             (j.contains("item_handlers") && j["item_handlers"].is_string())) {
    info.layout = LayoutVersion::kV0Flat;
  } else {
    info.layout = LayoutVersion::kV0Composite;
  }
  read_checkpoint_metadata_fields(j, *text, info);
  info.checksums_recorded = out.checksums.has_value();
  check_format_version(path, info, out.checksums.has_value());
  return out;
}

bool path_is_gone(const fs::path& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) != 0 && errno == ENOENT;
}

}  // namespace

void with_opened_checkpoint_tries(
    const fs::path& path,
    const std::function<void(const OpenedCheckpoint&)>& read) {
  for (int attempt = 0;; ++attempt) {
    std::shared_ptr<const CheckpointDir> dir;
    try {
      dir = std::make_shared<const CheckpointDir>(path);
      read(open_checkpoint(dir));
      return;
    } catch (...) {
      if (!dir || !dir->deleted()) throw;
      if (path_is_gone(path)) {
        throw NotFoundError("checkpoint " + path.string() +
                            " was deleted while it was being read");
      }
      if (attempt < kReplacedRetries) continue;
      const std::exception_ptr last = current_exception_as_error();
      std::string why;
      try {
        std::rethrow_exception(last);
      } catch (const Error& e) {
        why = e.what();
      }
      throw TimeoutError(
          "checkpoint " + path.string() + " was replaced " +
          std::to_string(kReplacedRetries + 1) +
          " times while it was being read (each try found a newer version; "
          "no damage was seen); the last try: " +
          why);
    }
  }
}

fs::path OpenedCheckpoint::folder_of(const std::string& name) const {
  return info.layout == LayoutVersion::kV0Flat ? dir->root()
                                               : dir->root() / name;
}

std::vector<std::string> OpenedCheckpoint::checkpointables() const {
  return list_checkpointables_in(dir->root(), info);
}

bool OpenedCheckpoint::check(const std::string& name) const {
  if (!checksums) return false;
  check_against_record(*dir, *checksums,
                       info.layout == LayoutVersion::kV0Flat ? "" : name);
  return true;
}

}  // namespace ckpt::internal
