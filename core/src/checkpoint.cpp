// The checkpoint engine: save and load of checkpointables (checkpoint.h).
#include <ckpt/checkpoint.h>
#include <ckpt/context.h>
#include <ckpt/errors.h>
#include <ckpt/registry.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>

#include "atomic_commit.h"
#include "layout.h"
#include "logging.h"

namespace fs = std::filesystem;

namespace ckpt {

struct AsyncSave::State {
  fs::path path;
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
  std::exception_ptr error;
};

namespace {

using Clock = std::chrono::steady_clock;

int64_t now_nsecs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Saves in flight in this process, by final path.
struct PendingSaves {
  std::mutex mutex;
  std::condition_variable cv;
  std::set<fs::path> paths;
  size_t count = 0;
};

PendingSaves& pending() {
  static auto* p = new PendingSaves();
  return *p;
}

void wait_at_exit() { wait_for_pending_saves(); }

void begin_save(const fs::path& final_path) {
  static std::once_flag registered;
  std::call_once(registered, [] { std::atexit(wait_at_exit); });
  PendingSaves& p = pending();
  std::lock_guard<std::mutex> lock(p.mutex);
  if (p.paths.count(final_path)) {
    throw AlreadyExistsError("a save to " + final_path.string() +
                             " is still in flight; wait for its result first");
  }
  p.paths.insert(final_path);
  ++p.count;
}

void end_save(const fs::path& final_path) {
  PendingSaves& p = pending();
  std::lock_guard<std::mutex> lock(p.mutex);
  p.paths.erase(final_path);
  --p.count;
  p.cv.notify_all();
}

// The same error kind with `prefix: ` before the message.
std::exception_ptr wrapped(const std::string& prefix) {
  try {
    throw;
  } catch (const Error& e) {
    try {
      throw_error(e.kind(), prefix + ": " + e.what());
    } catch (...) {
      return std::current_exception();
    }
  } catch (const std::exception& e) {
    return std::make_exception_ptr(InternalError(prefix + ": " + e.what()));
  } catch (...) {
    return std::make_exception_ptr(InternalError(prefix + ": unknown error"));
  }
}

fs::path normalized(const fs::path& path) {
  if (path.empty()) throw InvalidArgumentError("the checkpoint path is empty");
  fs::path p = fs::absolute(path).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();  // trailing slash
  return p;
}

CallContext call_for(const Context& context, const std::string& name,
                     const fs::path& directory) {
  const ContextOptions& o = context.options();
  CallContext call;
  call.checkpointable_name = name;
  call.directory = directory;
  call.process_index = o.process_index;
  call.process_count = o.process_count;
  call.is_primary_host = context.is_primary_host();
  call.file_mode = o.file_mode;
  call.options = o.handler_options;
  return call;
}

// One save from its blocking tiers to its commit.
struct SaveJob {
  fs::path final_path;
  fs::path temporary;
  bool overwrite = false;
  bool durable = true;
  unsigned file_mode = 0644;
  bool has_deadline = true;
  Clock::time_point deadline;
  std::chrono::milliseconds timeout{0};
  std::vector<std::string> names;
  std::vector<std::future<void>> futures;
  CheckpointInfo info;
  std::function<void(std::exception_ptr)> on_complete;
  std::shared_ptr<AsyncSave::State> state;
};

std::string failed_to_save(const SaveJob& job, const std::string& name) {
  return "failed to save checkpointable '" + name + "' to " +
         job.final_path.string();
}

// Waits for every background tier (until the deadline), then commits.
void finish(SaveJob& job) {
  std::exception_ptr error;
  for (size_t i = 0; i < job.futures.size(); ++i) {
    if (!job.has_deadline) {
      job.futures[i].wait();
    } else if (job.futures[i].wait_until(job.deadline) !=
               std::future_status::ready) {
      if (!error) {
        error = std::make_exception_ptr(TimeoutError(
            "saving " + job.final_path.string() + " did not finish within " +
            std::to_string(job.timeout.count()) + " ms (checkpointable '" +
            job.names[i] +
            "' was still being written); nothing was committed"));
      }
      continue;
    }
    try {
      job.futures[i].get();
    } catch (...) {
      std::exception_ptr e = wrapped(failed_to_save(job, job.names[i]));
      if (!error) error = e;
    }
  }
  if (!error) {
    try {
      job.info.commit_timestamp_nsecs = now_nsecs();
      internal::write_file(job.temporary / internal::kCheckpointMetadataFile,
                           internal::checkpoint_metadata_json(job.info),
                           job.file_mode);
      internal::write_file(job.temporary / internal::kMarkerFile, "",
                           job.file_mode);
      internal::write_file(job.temporary / internal::kCommitSuccessFile,
                           "Checkpoint commit was successful to " +
                               job.final_path.string() + "\n",
                           job.file_mode);
      if (job.durable) internal::fsync_tree(job.temporary);
      internal::commit_folder(job.temporary, job.final_path, job.overwrite,
                              job.durable);
    } catch (...) {
      error = wrapped("failed to commit checkpoint " + job.final_path.string());
    }
  }
  if (error) internal::remove_quietly(job.temporary);
  end_save(job.final_path);
  {
    std::lock_guard<std::mutex> lock(job.state->mutex);
    job.state->done = true;
    job.state->error = error;
  }
  job.state->cv.notify_all();
  if (job.on_complete) {
    try {
      job.on_complete(error);
    } catch (const std::exception& e) {
      internal::log(CKPT_LOG_ERROR,
                    std::string("on_complete callback threw: ") + e.what());
    }
  }
}

fs::path folder_of(const CheckpointInfo& info, const std::string& name) {
  return info.layout == LayoutVersion::kV0Flat ? info.path : info.path / name;
}

// The pytree checkpointable AUTO stands for.
std::string auto_name(const CheckpointInfo& info,
                      const std::vector<std::string>& names) {
  if (info.layout == LayoutVersion::kV0Flat) return kDefaultCheckpointableName;
  if (internal::is_pytree_folder(info.path / kDefaultCheckpointableName)) {
    return kDefaultCheckpointableName;
  }
  for (const std::string& name : names) {
    if (internal::is_pytree_folder(info.path / name)) return name;
  }
  throw InvalidLayoutError("checkpoint " + info.path.string() +
                           " has no pytree checkpointable (no folder with " +
                           internal::kPytreeMetadataFile +
                           "); name the checkpointable to load");
}

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "'" : ", '") + n + "'";
  return out.empty() ? "none" : out;
}

}  // namespace

HandlerPtr resolve_checkpointable_handler(const CheckpointInfo& info,
                                          const std::string& name,
                                          const Value* abstract_value) {
  const HandlerRegistry& registry = Context::current().registry();
  try {
    return resolve_load_handler(registry, name, abstract_value,
                                info.typestr_of(name));
  } catch (const NoEntryError&) {
    // Orbax's checkpoint-level fallback: the handler bound to `state`.
    if (registry.has(kDefaultCheckpointableName)) {
      return registry.get(kDefaultCheckpointableName);
    }
    throw;
  }
}

// ------------------------------------------------------------ AsyncSave

AsyncSave::AsyncSave(std::shared_ptr<State> state) : state_(std::move(state)) {}

void AsyncSave::result(std::optional<std::chrono::milliseconds> timeout) const {
  if (!state_) throw InvalidArgumentError("AsyncSave: no save behind it");
  std::unique_lock<std::mutex> lock(state_->mutex);
  if (timeout) {
    if (!state_->cv.wait_for(lock, *timeout, [&] { return state_->done; })) {
      throw TimeoutError("saving " + state_->path.string() +
                         " has not finished after " +
                         std::to_string(timeout->count()) + " ms");
    }
  } else {
    state_->cv.wait(lock, [&] { return state_->done; });
  }
  if (state_->error) std::rethrow_exception(state_->error);
}

bool AsyncSave::done() const {
  if (!state_) return true;
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->done;
}

const fs::path& AsyncSave::path() const {
  static const fs::path none;
  return state_ ? state_->path : none;
}

// ---------------------------------------------------------------- save

namespace {

// `value` with every array marked immutable: for a save whose caller waits
// for the commit, nothing can change the arrays meanwhile, so handlers may
// write them from the background without a snapshot copy.
Value frozen_for_blocking_save(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kArray: {
      const Array& a = value.as_array();
      return Value(Array::share(a.dtype(), a.shape(), a.data(), a.owner(),
                                /*immutable=*/true, a.strides()));
    }
    case Value::Kind::kDict: {
      Value::Dict dict;
      dict.reserve(value.size());
      for (const auto& [k, v] : value.as_dict()) {
        dict.emplace_back(k, frozen_for_blocking_save(v));
      }
      return Value::dict(std::move(dict));
    }
    case Value::Kind::kList: {
      Value::List list;
      list.reserve(value.size());
      for (const auto& v : value.as_list())
        list.push_back(frozen_for_blocking_save(v));
      return Value::list(std::move(list));
    }
    default:
      return value;
  }
}

// Starts a save. `caller_waits`: the caller blocks until the commit (the
// synchronous calls), so arrays need no snapshot and there is no deadline:
// returning while a background tier still reads the caller's memory would
// let the caller free it.
AsyncSave start_save(const fs::path& path,
                     const Checkpointables& checkpointables,
                     const SaveOptions& options, bool caller_waits) {
  const Context& context = Context::current();
  const ContextOptions& o = context.options();
  if (checkpointables.empty()) {
    throw InvalidArgumentError("nothing to save to " + path.string() +
                               ": no checkpointables given");
  }
  if (o.process_count > 1) {
    throw UnimplementedError(
        "multi-process saves need a barrier between processes, which this "
        "build does not provide yet (process_count = " +
        std::to_string(o.process_count) + ")");
  }
  if (!options.custom_metadata.is_object()) {
    throw InvalidArgumentError("custom_metadata must be a JSON object");
  }
  Checkpointables items = checkpointables;
  for (size_t i = 0; i < items.size(); ++i) {
    internal::check_checkpointable_name(items[i].first, false);
    for (size_t j = 0; j < i; ++j) {
      if (items[i].first == items[j].first) {
        throw InvalidArgumentError("checkpointable '" + items[i].first +
                                   "' is given twice");
      }
    }
  }
  if (options.metrics) {
    items.emplace_back(internal::kMetricsName, Value::json(*options.metrics));
  }
  std::vector<HandlerPtr> handlers;
  for (const auto& [name, value] : items) {
    handlers.push_back(resolve_save_handler(context.registry(), name, value));
  }

  auto job = std::make_shared<SaveJob>();
  job->final_path = normalized(path);
  job->overwrite = options.overwrite;
  job->durable = o.fsync;
  job->file_mode = o.file_mode;
  job->timeout = o.async_timeout;
  job->on_complete = options.on_complete;
  job->info.path = job->final_path;
  job->info.custom_metadata = options.custom_metadata;
  if (options.metrics) job->info.metrics = *options.metrics;
  job->state = std::make_shared<AsyncSave::State>();
  job->state->path = job->final_path;

  std::error_code ec;
  if (fs::exists(job->final_path, ec)) {
    if (!options.overwrite) {
      throw AlreadyExistsError("Destination " + job->final_path.string() +
                               " already exists; pass overwrite to replace it");
    }
    if (!fs::is_directory(job->final_path, ec)) {
      throw InvalidArgumentError("cannot overwrite " +
                                 job->final_path.string() +
                                 ": it is not a checkpoint folder");
    }
  }
  begin_save(job->final_path);
  try {
    fs::create_directories(job->final_path.parent_path());
    job->temporary = internal::temporary_path_for(job->final_path);
    auto make_dir = [&](const fs::path& dir) {
      fs::create_directory(dir);
      fs::permissions(dir, static_cast<fs::perms>(o.directory_mode));
    };
    make_dir(job->temporary);
    job->info.init_timestamp_nsecs = now_nsecs();
    job->has_deadline = !caller_waits;
    job->deadline = Clock::now() + o.async_timeout;
    for (size_t i = 0; i < items.size(); ++i) {
      const std::string& name = items[i].first;
      make_dir(job->temporary / name);
      job->names.push_back(name);
      job->info.item_handlers.emplace_back(name, handlers[i]->typestr());
      try {
        job->futures.push_back(handlers[i]->save(
            call_for(context, name, job->temporary / name),
            caller_waits ? frozen_for_blocking_save(items[i].second)
                         : items[i].second));
      } catch (...) {
        std::rethrow_exception(wrapped(failed_to_save(*job, name)));
      }
    }
  } catch (...) {
    // Background tiers already started write into the temporary folder:
    // let them end before it goes.
    for (auto& f : job->futures) f.wait();
    if (!job->temporary.empty()) internal::remove_quietly(job->temporary);
    end_save(job->final_path);
    throw;
  }
  std::thread([job] { finish(*job); }).detach();
  return AsyncSave(job->state);
}

}  // namespace

AsyncSave save_checkpointables_async(const fs::path& path,
                                     const Checkpointables& checkpointables,
                                     const SaveOptions& options) {
  return start_save(path, checkpointables, options, /*caller_waits=*/false);
}

void save_checkpointables(const fs::path& path,
                          const Checkpointables& checkpointables,
                          const SaveOptions& options) {
  start_save(path, checkpointables, options, /*caller_waits=*/true).result();
}

AsyncSave save_async(const fs::path& path, const Value& tree,
                     const SaveOptions& options) {
  return save_checkpointables_async(path, {{kDefaultCheckpointableName, tree}},
                                    options);
}

void save(const fs::path& path, const Value& tree, const SaveOptions& options) {
  save_checkpointables(path, {{kDefaultCheckpointableName, tree}}, options);
}

void wait_for_pending_saves() {
  PendingSaves& p = pending();
  std::unique_lock<std::mutex> lock(p.mutex);
  p.cv.wait(lock, [&] { return p.count == 0; });
}

// ---------------------------------------------------------------- load

Checkpointables load_checkpointables(const fs::path& path,
                                     const Checkpointables& abstracts) {
  const CheckpointInfo info = read_checkpoint_info(path);
  const std::vector<std::string> available = list_checkpointables(path);
  Checkpointables requested = abstracts;
  if (requested.empty()) {
    for (const std::string& name : available)
      requested.emplace_back(name, Value());
  }
  std::vector<std::string> missing;
  for (const auto& [name, abstract_value] : requested) {
    internal::check_checkpointable_name(name, true);
    bool found = false;
    for (const auto& a : available) found |= a == name;
    if (!found && name == internal::kMetricsName) {
      found = fs::is_directory(info.path / name);
    }
    if (!found) missing.push_back(name);
  }
  if (!missing.empty()) {
    std::vector<std::string> names;
    for (const auto& r : requested) names.push_back(r.first);
    throw NotFoundError("checkpoint " + path.string() +
                        " has no checkpointable " + join_names(missing) +
                        " (requested " + join_names(names) + "; available " +
                        join_names(available) + ")");
  }
  const Context& context = Context::current();
  std::vector<std::future<Value>> futures;
  auto failed = [&](const std::string& name) {
    return "failed to load checkpointable '" + name + "' from " + path.string();
  };
  for (const auto& [name, abstract_value] : requested) {
    const Value* abstract_ptr =
        abstract_value.is_none() ? nullptr : &abstract_value;
    try {
      HandlerPtr handler =
          resolve_checkpointable_handler(info, name, abstract_ptr);
      futures.push_back(handler->load(
          call_for(context, name, folder_of(info, name)), abstract_ptr));
    } catch (...) {
      std::rethrow_exception(wrapped(failed(name)));
    }
  }
  Checkpointables out;
  for (size_t i = 0; i < futures.size(); ++i) {
    try {
      out.emplace_back(requested[i].first, futures[i].get());
    } catch (...) {
      std::rethrow_exception(wrapped(failed(requested[i].first)));
    }
  }
  return out;
}

Value load(const fs::path& path, const Value* abstract_value,
           const std::string& name) {
  std::string resolved = name;
  if (name == kAutoName) {
    const CheckpointInfo info = read_checkpoint_info(path);
    resolved = auto_name(info, list_checkpointables(path));
  }
  Value abstract_copy = abstract_value ? *abstract_value : Value();
  return load_checkpointables(path, {{resolved, abstract_copy}})[0].second;
}

// ------------------------------------------------------------ metadata

Metadata metadata(const fs::path& path, const std::string& name) {
  Metadata out;
  out.checkpoint = read_checkpoint_info(path);
  const std::vector<std::string> names = list_checkpointables(path);
  std::string resolved =
      name == kAutoName ? auto_name(out.checkpoint, names) : name;
  const Context& context = Context::current();
  HandlerPtr handler =
      resolve_checkpointable_handler(out.checkpoint, resolved, nullptr);
  try {
    auto value = handler->metadata(
        call_for(context, resolved, folder_of(out.checkpoint, resolved)));
    if (value) out.metadata = *value;
  } catch (...) {
    std::rethrow_exception(
        wrapped("failed to read the metadata of checkpointable '" + resolved +
                "' in " + path.string()));
  }
  return out;
}

CheckpointablesMetadata checkpointables_metadata(const fs::path& path) {
  CheckpointablesMetadata out;
  out.checkpoint = read_checkpoint_info(path);
  const Context& context = Context::current();
  for (const std::string& name : list_checkpointables(path)) {
    Value value;
    try {
      HandlerPtr handler =
          resolve_checkpointable_handler(out.checkpoint, name, nullptr);
      auto m = handler->metadata(
          call_for(context, name, folder_of(out.checkpoint, name)));
      if (m) value = *m;
    } catch (const Error& e) {
      internal::log(CKPT_LOG_DEBUG, "no metadata for checkpointable '" + name +
                                        "': " + e.what());
    }
    out.metadata.emplace_back(name, std::move(value));
  }
  return out;
}

}  // namespace ckpt
