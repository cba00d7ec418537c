#include "training/remote_tier.h"

#include <ckpt/errors.h>
#include <ckpt/layout.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "format/checkpoint_metadata.h"
#include "format/names.h"
#include "save/atomic_commit.h"
#include "util/error_conversion.h"
#include "util/logging.h"

namespace ckpt::internal {

namespace fs = std::filesystem;

RemoteTier::RemoteTier(RemoteTierOptions options, StepNameFormat format,
                       Persisted on_persisted)
    : options_(std::move(options)),
      format_(std::move(format)),
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
  queue_.push_back({Task::Kind::kUpload, step, folder, replace});
  ++uploads_queued_;
  changed_.notify_all();
}

void RemoteTier::remove(int64_t step) {
  std::lock_guard<std::mutex> lock(mutex_);
  queue_.push_back({Task::Kind::kRemove, step, {}, false});
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
      if (task.kind == Task::Kind::kUpload) --uploads_queued_;
      busy_ = false;
    }
    changed_.notify_all();
  }
}

void RemoteTier::perform(const Task& task) {
  const std::string name = format_.name(task.step);
  try {
    if (task.kind == Task::Kind::kRemove) {
      remove_remote_checkpoint(*options_.store, name);
      return;
    }
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
    log(CKPT_LOG_ERROR,
        std::string(task.kind == Task::Kind::kUpload ? "uploading"
                                                     : "removing") +
            " step " + std::to_string(task.step) + " to " + url_ + "/" + name +
            ": " + e.what());
    std::lock_guard<std::mutex> lock(mutex_);
    if (!error_) error_ = std::current_exception();
  }
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
