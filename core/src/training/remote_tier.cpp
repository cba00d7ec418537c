#include "training/remote_tier.h"

#include <ckpt/errors.h>
#include <ckpt/layout.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "format/checkpoint_metadata.h"
#include "format/checksums.h"
#include "format/names.h"
#include "multiprocess/collective_steps.h"
#include "remote/remote_upload.h"
#include "save/atomic_commit.h"
#include "util/error_conversion.h"
#include "util/logging.h"

namespace ckpt::internal {

namespace fs = std::filesystem;

RemoteTier::RemoteTier(RemoteTierOptions options, StepNameFormat format,
                       TierProcess process, Persisted on_persisted)
    : options_(std::move(options)),
      format_(std::move(format)),
      process_(process),
      on_persisted_(std::move(on_persisted)),
      url_(options_.store->url()) {
  if (options_.max_pending_uploads < 1) {
    throw InvalidArgumentError(
        "RemoteTierOptions: max_pending_uploads must be at least 1");
  }
  if (options_.keep_local && *options_.keep_local < 0) {
    throw InvalidArgumentError(
        "RemoteTierOptions: keep_local must not be negative");
  }
  worker_ = std::thread([this] { run(); });
}

RemoteTier::~RemoteTier() {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return queue_.empty() && !busy_; });
    stop_ = true;
  }
  changed_.notify_all();
  worker_.join();
}

std::vector<CheckpointStep> RemoteTier::list(const fs::path& root) const {
  std::vector<CheckpointStep> out;
  for (const std::string& name : list_remote_checkpoints(*options_.store)) {
    const std::optional<int64_t> step = format_.parse(name);
    if (!step) continue;  // another checkpoint, or a foreign key
    CheckpointStep c;
    c.step = *step;
    c.path = root / name;
    c.local = false;
    c.remote = true;
    // Its commit time and metrics: its own _CHECKPOINT_METADATA (small).
    try {
      const RemoteCheckpoint remote =
          open_remote_checkpoint(*options_.store, name);
      const std::string text = options_.store->get(
          remote.key_of(kCheckpointMetadataFile), 0, 1 << 20);
      const nlohmann::json meta = nlohmann::json::parse(text, nullptr, false);
      CheckpointInfo info;
      if (meta.is_object()) read_checkpoint_metadata_fields(meta, text, info);
      if (info.commit_timestamp_nsecs) {
        c.time = std::chrono::system_clock::time_point(
            std::chrono::duration_cast<std::chrono::system_clock::duration>(
                std::chrono::nanoseconds(*info.commit_timestamp_nsecs)));
      }
      if (info.metrics.is_object() && !info.metrics.empty()) {
        c.metrics = info.metrics;
      }
    } catch (const Error& e) {
      log(CKPT_LOG_WARNING, "remote step " + url_ + "/" + name +
                                " is unreadable, left out: " + e.what());
      continue;
    }
    out.push_back(std::move(c));
  }
  std::sort(out.begin(), out.end(),
            [](const CheckpointStep& a, const CheckpointStep& b) {
              return a.step < b.step;
            });
  return out;
}

void RemoteTier::upload(int64_t step, const fs::path& folder, bool replace,
                        bool no_wait) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!no_wait) {
    changed_.wait(lock, [&] {
      return uploads_queued_ <
             static_cast<size_t>(options_.max_pending_uploads);
    });
  }
  if (many()) pending_[step] = Pending{replace, false, {}};
  // Saved again while the last save's upload waits or runs: this upload
  // replaces whatever that one commits, if it commits.
  if (uploads_of_step_[step]++ > 0 && !many()) replace = true;
  queue_.push_back({Task::Kind::kUpload, step, folder, replace, {}, {}, {}});
  ++uploads_queued_;
  changed_.notify_all();
}

void RemoteTier::remove(int64_t step) {
  if (many()) {
    const auto pending = pending_.find(step);
    if (pending != pending_.end()) {
      pending->second.pruned = true;  // settle() removes its attempt
      return;
    }
    if (process_.index != process_.primary) return;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  queue_.push_back({Task::Kind::kRemove, step, {}, false, {}, {}, {}});
  changed_.notify_all();
}

void RemoteTier::finish() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return queue_.empty() && !busy_; });
  if (error_) {
    std::exception_ptr error = error_;
    error_ = nullptr;
    std::rethrow_exception(error);
  }
}

void RemoteTier::drain() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return queue_.empty() && !busy_; });
}

void RemoteTier::download(int64_t step, const fs::path& into,
                          const std::vector<std::string>& only) const {
  download_checkpoint(*options_.store, format_.name(step), into.string(), only,
                      options_.copy);
}

void RemoteTier::run() {
  for (;;) {
    Task task;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      task = queue_.front();
      busy_ = true;
    }
    perform(task);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.pop_front();
      if (task.kind == Task::Kind::kUpload) {
        --uploads_queued_;
        if (--uploads_of_step_[task.step] == 0) {
          uploads_of_step_.erase(task.step);
        }
      }
      busy_ = false;
    }
    changed_.notify_all();
  }
}

void RemoteTier::perform(const Task& task) {
  const std::string name = format_.name(task.step);
  try {
    switch (task.kind) {
      case Task::Kind::kRemove:
        remove_remote_checkpoint(*options_.store, name);
        return;
      case Task::Kind::kCommit:
        commit(task);
        return;
      case Task::Kind::kAbort:
        remove_remote_attempt(*options_.store, name, task.attempt,
                              options_.copy.parallelism);
        return;
      case Task::Kind::kUpload:
        break;
    }
    if (many()) {
      upload_part(task);
      return;
    }
    // Saved again since: the newer save's upload follows.
    if (saved_again(task.step)) return;
    if (task.replace) remove_remote_checkpoint(*options_.store, name);
    try {
      upload_checkpoint(task.folder.string(), *options_.store, name,
                        options_.copy);
    } catch (const NotFoundError&) {
      // Pruned locally before its turn came: nothing to persist.
      return;
    }
    if (on_persisted_) on_persisted_(task.step);
  } catch (const std::exception& e) {
    if (task.kind == Task::Kind::kUpload && !many() && saved_again(task.step)) {
      // Its folder was replaced under it ("changed during the upload"):
      // the newer save's upload persists the step.
      log(CKPT_LOG_INFO, "step " + std::to_string(task.step) +
                             " was saved again during its upload: " + e.what());
      return;
    }
    fail(task, e.what());
  }
}

bool RemoteTier::saved_again(int64_t step) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = uploads_of_step_.find(step);
  return it != uploads_of_step_.end() && it->second > 1;
}

void RemoteTier::fail(const Task& task, const std::string& what) {
  const char* verb = task.kind == Task::Kind::kRemove  ? "removing"
                     : task.kind == Task::Kind::kAbort ? "cleaning up"
                                                       : "uploading";
  const std::string message = std::string(verb) + " step " +
                              std::to_string(task.step) + " to " + url_ + "/" +
                              format_.name(task.step) + ": " + what;
  log(CKPT_LOG_ERROR, message);
  std::lock_guard<std::mutex> lock(mutex_);
  if (!error_) error_ = std::current_exception();  // called by a handler
}

// This process's part of a step of a job of many processes; its outcome,
// failures included, goes into the next report.
void RemoteTier::upload_part(const Task& task) {
  Part part;
  part.step = task.step;
  try {
    part.attempt = shared_attempt_name(task.folder);
    LocalTree tree = list_local_tree(task.folder);
    std::vector<RemoteFile> mine;
    for (RemoteFile& f : tree.files) {
      if (uploader_of(f.path, process_.count, process_.primary) ==
          process_.index) {
        mine.push_back(f);
      }
      if (process_.index == process_.primary) part.all_paths.push_back(f.path);
    }
    if (process_.index == process_.primary) part.folders = tree.folders;
    part.files = upload_files(task.folder, *options_.store,
                              format_.name(task.step) + "/" + part.attempt,
                              std::move(mine), options_.copy.parallelism);
  } catch (const std::exception& e) {
    part.error = *e.what() ? e.what() : "an unnamed failure";
  }
  std::lock_guard<std::mutex> lock(mutex_);
  finished_.push_back(std::move(part));
}

void RemoteTier::commit(const Task& task) {
  RemoteStore& store = *options_.store;
  const std::string name = format_.name(task.step);
  if (task.replace) {
    // The step it overwrote: its record, then its attempts (not this one).
    store.remove(name + "/" + kRemoteCommitRecord);
    remove_remote_attempts_but(store, name, task.attempt,
                               options_.copy.parallelism);
  }
  try {
    commit_remote_checkpoint(store, name, task.attempt, task.folders,
                             task.files, "step " + std::to_string(task.step));
  } catch (const AlreadyExistsError&) {
    remove_remote_attempt(store, name, task.attempt, options_.copy.parallelism);
    throw;
  }
  if (on_persisted_) on_persisted_(task.step);
}

std::string RemoteTier::report() {
  std::vector<Part> parts;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    parts.swap(finished_);
  }
  nlohmann::json out = nlohmann::json::array();
  for (const Part& part : parts) {
    nlohmann::json files = nlohmann::json::array();
    for (const RemoteFile& f : part.files) {
      files.push_back({f.path, f.size, hex16(f.xxh3)});
    }
    out.push_back({{"step", part.step},
                   {"attempt", part.attempt},
                   {"files", std::move(files)},
                   {"folders", part.folders},
                   {"all", part.all_paths},
                   {"error", part.error}});
  }
  return out.dump();
}

namespace {

// A report of process `p` (RemoteTier::report) back into parts; another
// process's report is checked as any input (InternalError when it is not
// what this build writes).
template <class Part>
std::vector<Part> parse_report(const std::string& text, size_t p) {
  const auto bad = [&] {
    return InternalError("the remote tier's report from process " +
                         std::to_string(p) + " is unreadable");
  };
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  if (!doc.is_array()) throw bad();
  std::vector<Part> parts;
  try {
    for (const nlohmann::json& j : doc) {
      Part part;
      part.step = j.at("step").get<int64_t>();
      part.attempt = j.at("attempt").get<std::string>();
      for (const nlohmann::json& f : j.at("files")) {
        RemoteFile file;
        file.path = f.at(0).get<std::string>();
        file.size = f.at(1).get<int64_t>();
        if (!parse_hex16(f.at(2).get<std::string>(), file.xxh3)) throw bad();
        part.files.push_back(std::move(file));
      }
      part.folders = j.at("folders").get<std::vector<std::string>>();
      part.all_paths = j.at("all").get<std::vector<std::string>>();
      part.error = j.at("error").get<std::string>();
      parts.push_back(std::move(part));
    }
  } catch (const nlohmann::json::exception&) {
    throw bad();
  }
  return parts;
}

}  // namespace

std::vector<int64_t> RemoteTier::absorb(
    const std::vector<std::string>& reports) {
  for (size_t p = 0; p < reports.size(); ++p) {
    for (Part& part : parse_report<Part>(reports[p], p)) {
      const auto pending = pending_.find(part.step);
      if (pending == pending_.end()) continue;  // superseded by a new save
      pending->second.parts[static_cast<int>(p)] = std::move(part);
    }
  }
  std::vector<int64_t> persisted;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.parts.size() != static_cast<size_t>(process_.count)) {
      ++it;
      continue;
    }
    settle(it->first, std::move(it->second), persisted);
    it = pending_.erase(it);
  }
  return persisted;
}

std::vector<int64_t> RemoteTier::finish_job(Collectives& collectives,
                                            const fs::path& root) {
  drain();
  const std::vector<int64_t> persisted =
      absorb(collectives.all_gather(report()));
  const std::exception_ptr error =
      announce_commit(collectives, process_.primary, root, [&] { finish(); });
  if (error) std::rethrow_exception(error);
  return persisted;
}

void RemoteTier::settle(int64_t step, Pending pending,
                        std::vector<int64_t>& persisted) {
  Task task{Task::Kind::kCommit, step, {}, pending.replace, {}, {}, {}};
  std::string problem;
  std::set<std::string> attempts;
  std::set<std::string> uploaded;
  for (auto& [p, part] : pending.parts) {
    if (!part.attempt.empty()) attempts.insert(part.attempt);
    if (!problem.empty()) continue;
    const std::string who = "process " + std::to_string(p) + " of " +
                            std::to_string(process_.count);
    if (!part.error.empty()) {
      problem = who + ": " + part.error;
    } else if (attempts.size() > 1) {
      problem = who + " read another _CHECKPOINT_METADATA than the others";
    }
    for (RemoteFile& f : part.files) {
      if (!uploaded.insert(f.path).second) {
        problem = f.path + " was uploaded twice (again by " + who + ")";
      }
      task.files.push_back(std::move(f));
    }
    if (p == process_.primary) task.folders = std::move(part.folders);
  }
  if (problem.empty()) {
    for (const std::string& path : pending.parts[process_.primary].all_paths) {
      if (!uploaded.count(path)) {
        problem = path +
                  " was uploaded by no process (does every process "
                  "see the step's folder?)";
        break;
      }
    }
  }
  const bool primary = process_.index == process_.primary;
  if (problem.empty() && !pending.pruned) {
    task.attempt = *attempts.begin();
    if (!primary) {
      persisted.push_back(step);
      return;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(task));
    changed_.notify_all();
    return;
  }
  if (!primary) return;
  if (!pending.pruned) {
    // The step stays local, and goes up again when the root is next opened.
    const std::string message = "uploading step " + std::to_string(step) +
                                " to " + url_ + "/" + format_.name(step) +
                                " failed on " + problem;
    log(CKPT_LOG_ERROR, message);
    std::lock_guard<std::mutex> lock(mutex_);
    if (!error_) error_ = std::make_exception_ptr(IOError(message));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  for (const std::string& attempt : attempts) {
    queue_.push_back({Task::Kind::kAbort, step, {}, false, attempt, {}, {}});
  }
  changed_.notify_all();
}

std::set<int64_t> merge_remote_steps(std::vector<CheckpointStep>& steps,
                                     std::vector<CheckpointStep> remote) {
  std::set<int64_t> in_store;
  for (CheckpointStep& r : remote) {
    in_store.insert(r.step);
    auto local =
        std::find_if(steps.begin(), steps.end(),
                     [&](const CheckpointStep& c) { return c.step == r.step; });
    if (local != steps.end()) {
      local->remote = true;
    } else {
      steps.push_back(std::move(r));
    }
  }
  std::stable_sort(steps.begin(), steps.end(),
                   [](const CheckpointStep& a, const CheckpointStep& b) {
                     return a.step < b.step;
                   });
  return in_store;
}

StepCopy::StepCopy(RemoteTier* remote, const CheckpointStep& c,
                   const std::vector<std::string>& only)
    : path_(c.path) {
  if (c.local || !remote) return;
  // A temporary folder of the root (removed as a dead save's, should this
  // process die) holding the step under its own name.
  temp_ = temporary_path_for(c.path);
  path_ = temp_ / c.path.filename();
  with_errors_converted([&] { fs::create_directories(temp_); });
  try {
    try {
      remote->download(c.step, path_, only);
    } catch (const NotFoundError&) {
      if (only.empty()) throw;
      remote->download(c.step, path_, {});
    }
  } catch (...) {
    remove_quietly(temp_);
    throw;
  }
}

StepCopy::~StepCopy() {
  if (!temp_.empty()) remove_quietly(temp_);
}

}  // namespace ckpt::internal
