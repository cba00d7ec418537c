// Checkpoints in a RemoteStore (ckpt/remote.h): upload, commit record,
// download, removal.
#include <ckpt/errors.h>
#include <ckpt/layout.h>
#include <ckpt/remote.h>
#include <ckpt/sdk/parallel.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "format/checksums.h"
#include "format/names.h"
#include "remote/remote_upload.h"
#include "util/logging.h"

namespace ckpt {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kRecordFormat = "ckpt remote checkpoint";
constexpr int kRecordVersion = 1;
// A record past this size is refused before it is parsed (a million files
// fit in far less).
constexpr int64_t kMaxRecordBytes = 64 << 20;
constexpr int64_t kMaxFileSize = int64_t{1} << 50;
// A file whose bytes differ from the record is fetched this often in all.
constexpr int kDownloadTries = 3;

std::string join_key(const std::string& prefix, const std::string& rest) {
  return prefix.empty() ? rest : prefix + "/" + rest;
}

// A name no other upload picks: time, process and randomness.
std::string new_attempt_name() {
  std::random_device random;
  const uint64_t bits =
      (static_cast<uint64_t>(random()) << 32) ^
      static_cast<uint64_t>(random()) ^
      static_cast<uint64_t>(
          std::chrono::steady_clock::now().time_since_epoch().count()) ^
      (static_cast<uint64_t>(::getpid()) << 40);
  return "attempt-" + internal::hex16(bits);
}

bool is_attempt_name(const std::string& name) {
  uint64_t ignored = 0;
  return name.size() == 24 && name.rfind("attempt-", 0) == 0 &&
         internal::parse_hex16(name.substr(8), ignored);
}

// fn(i) for i in [0, count), on up to `parallelism` threads.
void parallel_for(size_t count, int parallelism,
                  const std::function<void(size_t)>& fn) {
  sdk::parallel_for(count, static_cast<size_t>(std::max(1, parallelism)), fn);
}

std::string record_text(const std::string& attempt,
                        const std::vector<std::string>& folders,
                        const std::vector<RemoteFile>& tree_files) {
  json files = json::array();
  for (const RemoteFile& f : tree_files) {
    files.push_back({{"path", f.path},
                     {"size", f.size},
                     {"xxh3", internal::hex16(f.xxh3)}});
  }
  return json{{"format", kRecordFormat},
              {"version", kRecordVersion},
              {"attempt", attempt},
              {"folders", folders},
              {"files", std::move(files)}}
      .dump(1);
}

struct ParsedRecord {
  RemoteCheckpoint checkpoint;
  std::vector<std::string> folders;
};

ParsedRecord parse_record(const std::string& text, const std::string& shown) {
  const auto damaged = [&](const std::string& why) -> DataLossError {
    return DataLossError("the commit record " + shown + " is damaged: " + why);
  };
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) throw damaged("not JSON");
  if (doc.value("format", "") != kRecordFormat) {
    throw damaged("it is no ckpt remote checkpoint record");
  }
  const json& version = doc["version"];
  if (!version.is_number_integer() ||
      version.get<int64_t>() != kRecordVersion) {
    throw UnimplementedError("the commit record " + shown +
                             " has a version this ckpt does not read (" +
                             version.dump() + "; it reads 1)");
  }
  ParsedRecord out;
  const json& attempt = doc["attempt"];
  if (!attempt.is_string() || !is_attempt_name(attempt.get<std::string>())) {
    throw damaged("no valid \"attempt\"");
  }
  out.checkpoint.attempt = attempt.get<std::string>();
  const json& folders = doc["folders"];
  const json& files = doc["files"];
  if (!folders.is_array() || !files.is_array()) {
    throw damaged("no \"folders\" and \"files\" lists");
  }
  const auto checked_path = [&](const json& p) {
    if (!p.is_string()) throw damaged("a path that is not a string");
    const std::string path = p.get<std::string>();
    try {
      internal::check_relative_key(path, "path");
    } catch (const InvalidArgumentError& e) {
      throw damaged(e.what());
    }
    return path;
  };
  for (const json& f : folders) out.folders.push_back(checked_path(f));
  std::set<std::string> seen;
  for (const json& f : files) {
    if (!f.is_object()) throw damaged("a file entry that is no object");
    RemoteFile file;
    file.path = checked_path(f["path"]);
    const json& size = f["size"];
    if (!size.is_number_integer() || size.get<int64_t>() < 0 ||
        size.get<int64_t>() > kMaxFileSize) {
      throw damaged("the size of " + file.path + " is not a valid size");
    }
    file.size = size.get<int64_t>();
    const json& xxh3 = f["xxh3"];
    if (!xxh3.is_string() ||
        !internal::parse_hex16(xxh3.get<std::string>(), file.xxh3)) {
      throw damaged("the xxh3 of " + file.path + " is not 16 hex digits");
    }
    if (!seen.insert(file.path).second) {
      throw damaged(file.path + " is listed twice");
    }
    out.checkpoint.files.push_back(std::move(file));
  }
  return out;
}

ParsedRecord read_record(RemoteStore& store, const std::string& prefix) {
  const std::string key = join_key(prefix, kRemoteCommitRecord);
  const std::string shown = store.url() + "/" + key;
  std::string text;
  try {
    text = store.get(key, 0, kMaxRecordBytes + 1);
  } catch (const NotFoundError&) {
    throw NotFoundError("no checkpoint is committed at " +
                        join_key(store.url(), prefix) + " (no " +
                        kRemoteCommitRecord + ")");
  }
  if (static_cast<int64_t>(text.size()) > kMaxRecordBytes) {
    throw DataLossError("the commit record " + shown + " is larger than " +
                        std::to_string(kMaxRecordBytes) + " bytes");
  }
  ParsedRecord record = parse_record(text, shown);
  record.checkpoint.prefix = prefix;
  return record;
}

// Whether `path` lies in a top-level entry `only` asks for; the files
// directly at the checkpoint's root (its own metadata) always do.
bool wanted(const std::string& path, bool is_folder,
            const std::set<std::string>& only) {
  const size_t slash = path.find('/');
  if (only.empty() || (slash == std::string::npos && !is_folder)) return true;
  return only.count(path.substr(0, slash)) > 0;
}

}  // namespace

std::string RemoteCheckpoint::key_of(const std::string& path) const {
  return join_key(join_key(prefix, attempt), path);
}

std::vector<std::string> list_remote_checkpoints(RemoteStore& store) {
  std::vector<std::string> names;
  const std::string record = std::string("/") + kRemoteCommitRecord;
  for (const RemoteObject& o : store.list("")) {
    const size_t slash = o.key.find('/');
    if (slash != std::string::npos && o.key.substr(slash) == record) {
      names.push_back(o.key.substr(0, slash));
    }
  }
  return names;  // sorted, as list() is
}

RemoteCheckpoint open_remote_checkpoint(RemoteStore& store,
                                        const std::string& prefix) {
  return read_record(store, prefix).checkpoint;
}

void upload_checkpoint(const std::string& local_dir, RemoteStore& store,
                       const std::string& prefix,
                       const RemoteCopyOptions& options) {
  const fs::path root(local_dir);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    throw NotFoundError("cannot upload " + local_dir + ": no such folder");
  }
  if (!fs::exists(root / kCheckpointMetadataFile, ec)) {
    throw InvalidLayoutError("cannot upload " + local_dir +
                             ": it is no committed checkpoint (no " +
                             std::string(kCheckpointMetadataFile) + ")");
  }
  if (!prefix.empty()) internal::check_relative_key(prefix, "the prefix");
  internal::LocalTree tree = internal::list_local_tree(root);
  const std::string attempt = new_attempt_name();
  try {
    tree.files =
        internal::upload_files(root, store, join_key(prefix, attempt),
                               std::move(tree.files), options.parallelism);
    internal::commit_remote_checkpoint(store, prefix, attempt, tree.folders,
                                       std::move(tree.files), local_dir);
  } catch (...) {
    try {
      internal::remove_remote_attempt(store, prefix, attempt,
                                      options.parallelism);
    } catch (const std::exception&) {
      // The first error is the one to report; the attempt stays, unnamed
      // by any record, for remove_remote_checkpoint.
    }
    throw;
  }
}

void download_checkpoint(RemoteStore& store, const std::string& prefix,
                         const std::string& local_dir,
                         const std::vector<std::string>& only,
                         const RemoteCopyOptions& options) {
  const ParsedRecord record = read_record(store, prefix);
  const RemoteCheckpoint& checkpoint = record.checkpoint;
  const fs::path final_path = fs::absolute(local_dir);
  std::error_code ec;
  if (fs::exists(fs::symlink_status(final_path, ec))) {
    throw AlreadyExistsError("cannot download to " + local_dir + ": it exists");
  }
  const std::set<std::string> asked(only.begin(), only.end());
  for (const std::string& name : asked) {
    bool found = false;
    for (const RemoteFile& f : checkpoint.files) {
      found = found || f.path == name || f.path.rfind(name + "/", 0) == 0;
    }
    for (const std::string& f : record.folders) found = found || f == name;
    if (!found) {
      throw NotFoundError("the checkpoint at " + join_key(store.url(), prefix) +
                          " has no '" + name + "'");
    }
  }
  const fs::path temp = internal::temporary_path_for(final_path);
  fs::create_directories(temp, ec);
  if (ec) throw_os_error(ec.value(), "cannot create " + temp.string());
  try {
    for (const std::string& folder : record.folders) {
      if (!wanted(folder, true, asked)) continue;
      fs::create_directories(temp / folder, ec);
      if (ec) throw_os_error(ec.value(), "cannot create " + folder);
    }
    std::vector<const RemoteFile*> files;
    for (const RemoteFile& f : checkpoint.files) {
      if (wanted(f.path, false, asked)) files.push_back(&f);
    }
    std::stable_sort(files.begin(), files.end(),
                     [](const RemoteFile* a, const RemoteFile* b) {
                       return a->size > b->size;
                     });
    parallel_for(files.size(), options.parallelism, [&](size_t i) {
      const RemoteFile& f = *files[i];
      const fs::path target = temp / f.path;
      std::error_code mk;
      fs::create_directories(target.parent_path(), mk);
      if (mk) throw_os_error(mk.value(), "cannot create " + target.string());
      const std::string key = checkpoint.key_of(f.path);
      // Bytes damaged on the way are fetched again; bytes damaged in the
      // store stay damaged, and are reported.
      for (int attempt = 1;; ++attempt) {
        store.get_file(key, target.string());
        const internal::FileDigest got =
            internal::xxh3_of_file(target.string());
        if (got.size == static_cast<uint64_t>(f.size) && got.xxh3 == f.xxh3) {
          break;
        }
        if (attempt == kDownloadTries) {
          throw DataLossError("downloaded " + store.url() + "/" + key +
                              " differs from its " + "commit record in " +
                              std::to_string(kDownloadTries) + " tries (" +
                              std::to_string(got.size) + " bytes, xxh3 " +
                              internal::hex16(got.xxh3) + "; recorded " +
                              std::to_string(f.size) + " bytes, xxh3 " +
                              internal::hex16(f.xxh3) + ")");
        }
      }
    });
    fs::rename(temp, final_path, ec);
    if (ec) throw_os_error(ec.value(), "cannot create " + local_dir);
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(temp, ignored);
    throw;
  }
}

void remove_remote_checkpoint(RemoteStore& store, const std::string& prefix) {
  if (!prefix.empty()) internal::check_relative_key(prefix, "the prefix");
  store.remove(join_key(prefix, kRemoteCommitRecord));
  // Every attempt's files, committed or not; other keys are left alone.
  internal::remove_remote_attempts_but(store, prefix, "", 8);
}

namespace internal {

LocalTree list_local_tree(const fs::path& root) {
  LocalTree tree;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    throw NotFoundError("cannot read " + root.string() + ": no such folder");
  }
  fs::recursive_directory_iterator it(root, ec), end;
  if (ec) throw_os_error(ec.value(), "cannot read " + root.string());
  for (; it != end; it.increment(ec)) {
    if (ec) throw_os_error(ec.value(), "cannot read " + root.string());
    const fs::file_status status = it->symlink_status(ec);
    const std::string rel =
        it->path().lexically_relative(root).generic_string();
    if (fs::is_directory(status)) {
      tree.folders.push_back(rel);
    } else if (fs::is_regular_file(status)) {
      tree.files.push_back({rel, 0, 0});
    } else {
      throw InvalidArgumentError(it->path().string() +
                                 " is neither a folder nor a regular file; "
                                 "a checkpoint holds only those");
    }
  }
  std::sort(tree.folders.begin(), tree.folders.end());
  std::sort(
      tree.files.begin(), tree.files.end(),
      [](const RemoteFile& a, const RemoteFile& b) { return a.path < b.path; });
  return tree;
}

std::string shared_attempt_name(const fs::path& root) {
  const fs::path metadata = root / kCheckpointMetadataFile;
  std::error_code ec;
  if (!fs::is_regular_file(metadata, ec)) {
    throw NotFoundError("cannot upload " + root.string() +
                        ": it is no committed checkpoint (no " +
                        std::string(kCheckpointMetadataFile) + ")");
  }
  return "attempt-" + hex16(xxh3_of_file(metadata.string()).xxh3);
}

int uploader_of(const std::string& path, int count, int primary) {
  constexpr std::string_view kTag = "process_";
  for (size_t at = path.find(kTag); at != std::string::npos;
       at = path.find(kTag, at + 1)) {
    size_t end = at + kTag.size();
    int64_t k = 0;
    while (end < path.size() && path[end] >= '0' && path[end] <= '9' &&
           k < count) {
      k = k * 10 + (path[end++] - '0');
    }
    const bool digits = end > at + kTag.size();
    const bool bounded =
        end == path.size() || path[end] < '0' || path[end] > '9';
    if (digits && bounded && k < count) return static_cast<int>(k);
  }
  return primary;
}

std::vector<RemoteFile> upload_files(const fs::path& root, RemoteStore& store,
                                     const std::string& attempt_prefix,
                                     std::vector<RemoteFile> files,
                                     int parallelism) {
  const auto hash_all = [&](std::vector<RemoteFile>& out) {
    parallel_for(out.size(), parallelism, [&](size_t i) {
      const FileDigest digest = xxh3_of_file((root / out[i].path).string());
      out[i].size = static_cast<int64_t>(digest.size);
      out[i].xxh3 = digest.xxh3;
    });
  };
  hash_all(files);
  // The largest files first: they set the upload's length.
  std::vector<size_t> order(files.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return files[a].size > files[b].size;
  });
  parallel_for(order.size(), parallelism, [&](size_t i) {
    const RemoteFile& f = files[order[i]];
    store.put_file(join_key(attempt_prefix, f.path), (root / f.path).string());
  });
  // The files did not change while they went up.
  std::vector<RemoteFile> after = files;
  hash_all(after);
  for (size_t i = 0; i < files.size(); ++i) {
    if (after[i].size != files[i].size || after[i].xxh3 != files[i].xxh3) {
      throw DataLossError("cannot upload " + root.string() + ": " +
                          files[i].path + " changed during the upload");
    }
  }
  return files;
}

void commit_remote_checkpoint(RemoteStore& store, const std::string& prefix,
                              const std::string& attempt,
                              const std::vector<std::string>& folders,
                              std::vector<RemoteFile> files,
                              const std::string& source) {
  std::sort(
      files.begin(), files.end(),
      [](const RemoteFile& a, const RemoteFile& b) { return a.path < b.path; });
  if (!store.put_if_absent(join_key(prefix, kRemoteCommitRecord),
                           record_text(attempt, folders, files))) {
    throw AlreadyExistsError("cannot upload " + source + " to " +
                             join_key(store.url(), prefix) +
                             ": a checkpoint is already committed there");
  }
  // What uploads to `prefix` left unfinished (killed, or beaten to the
  // record and still removing theirs) is no checkpoint now, nor will be.
  try {
    remove_remote_attempts_but(store, prefix, attempt, 8);
  } catch (const std::exception& e) {
    log(CKPT_LOG_WARNING, "committed " + join_key(store.url(), prefix) +
                              ", but could not remove what earlier uploads "
                              "left there: " +
                              e.what());
  }
}

void remove_remote_attempt(RemoteStore& store, const std::string& prefix,
                           const std::string& attempt, int parallelism) {
  const std::vector<RemoteObject> objects =
      store.list(join_key(prefix, attempt) + "/");
  parallel_for(objects.size(), parallelism,
               [&](size_t i) { store.remove(objects[i].key); });
}

void remove_remote_attempts_but(RemoteStore& store, const std::string& prefix,
                                const std::string& kept, int parallelism) {
  const size_t start = prefix.empty() ? 0 : prefix.size() + 1;
  std::vector<RemoteObject> objects = store.list(join_key(prefix, "attempt-"));
  objects.erase(std::remove_if(objects.begin(), objects.end(),
                               [&](const RemoteObject& o) {
                                 const size_t slash = o.key.find('/', start);
                                 if (slash == std::string::npos) return true;
                                 const std::string attempt =
                                     o.key.substr(start, slash - start);
                                 return attempt == kept ||
                                        !is_attempt_name(attempt);
                               }),
                objects.end());
  parallel_for(objects.size(), parallelism,
               [&](size_t i) { store.remove(objects[i].key); });
}

}  // namespace internal
}  // namespace ckpt
