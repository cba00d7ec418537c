// Loading checkpoints and their metadata (checkpoint.h). Each call reads
// _CHECKPOINT_METADATA once and hands the handlers the folders it found.
#include <ckpt/checkpoint.h>
#include <ckpt/context.h>
#include <ckpt/errors.h>
#include <ckpt/registry.h>

#include "format/checkpoint_metadata.h"
#include "format/names.h"
#include "handlers/context.h"
#include "handlers/resolution.h"
#include "load/open_checkpoint.h"
#include "plugin_host/startup.h"
#include "util/error_conversion.h"
#include "util/logging.h"
#include "value/value_bridge.h"

namespace fs = std::filesystem;

namespace ckpt {

namespace {

// The pytree checkpointable AUTO stands for.
std::string auto_name(const internal::OpenedCheckpoint& checkpoint,
                      const std::vector<std::string>& names) {
  const CheckpointInfo& info = checkpoint.info;
  if (info.layout == LayoutVersion::kV0Flat) return kDefaultCheckpointableName;
  if (internal::is_pytree_folder(
          checkpoint.folder_of(kDefaultCheckpointableName))) {
    return kDefaultCheckpointableName;
  }
  for (const std::string& name : names) {
    if (internal::is_pytree_folder(checkpoint.folder_of(name))) return name;
  }
  throw InvalidLayoutError("checkpoint " + info.path.string() +
                           " has no pytree checkpointable (no folder with " +
                           kPytreeMetadataFile +
                           "); name the checkpointable to load");
}

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "'" : ", '") + n + "'";
  return out.empty() ? "none" : out;
}

// The requested checkpointables (every one when none is named), after
// checking that each exists.
Checkpointables requested_checkpointables(
    const internal::OpenedCheckpoint& checkpoint,
    const std::vector<std::string>& available,
    const Checkpointables& abstracts) {
  const CheckpointInfo& info = checkpoint.info;
  Checkpointables requested = abstracts;
  if (requested.empty()) {
    // "Every checkpointable" of a checkpoint with checksums is every one it
    // recorded: one that is gone (say, the checkpoint is being deleted) is
    // damage, not a smaller checkpoint.
    if (checkpoint.checksums) {
      for (const auto& record : checkpoint.checksums->records) {
        if (record.type != internal::FileRecord::Type::kFolder ||
            record.path.find('/') != std::string::npos) {
          continue;
        }
        std::error_code ec;
        if (!fs::is_directory(checkpoint.folder_of(record.path), ec)) {
          throw DataLossError("checkpoint " + info.path.string() +
                              " is damaged: checkpointable '" + record.path +
                              "' recorded in " + kChecksumsFile +
                              " is missing");
        }
      }
    }
    for (const std::string& name : available) {
      requested.emplace_back(name, Value());
    }
  }
  std::vector<std::string> missing;
  for (const auto& [name, abstract_value] : requested) {
    internal::check_checkpointable_name(name, true);
    bool found = false;
    for (const auto& a : available) found |= a == name;
    if (!found && name == kMetricsName) {
      found = fs::is_directory(checkpoint.folder_of(name));
    }
    if (!found) missing.push_back(name);
  }
  if (!missing.empty()) {
    std::vector<std::string> names;
    for (const auto& r : requested) names.push_back(r.first);
    throw NotFoundError("checkpoint " + info.path.string() +
                        " has no checkpointable " + join_names(missing) +
                        " (requested " + join_names(names) + "; available " +
                        join_names(available) + ")");
  }
  return requested;
}

// The error in flight as "failed to load checkpointable <name> from
// <path>: ...", with the reason a fallback handler was used first, and
// the checkpoint's path where the handler saw /proc/self/fd/<n>.
std::exception_ptr load_failure(const internal::OpenedCheckpoint& checkpoint,
                                const std::string& name,
                                const internal::LoadResolution& resolution) {
  std::string prefix = "failed to load checkpointable '" + name + "' from " +
                       checkpoint.info.path.string();
  if (checkpoint.dir->deleted()) {
    prefix +=
        " (the checkpoint was deleted or replaced while it was being "
        "loaded)";
  }
  try {
    std::rethrow_exception(internal::current_exception_as_error());
  } catch (const Error& e) {
    const std::string what = checkpoint.dir->shown(e.what());
    if (resolution.fallback_reason.empty()) {
      try {
        throw_error(e.kind(), prefix + ": " + what);
      } catch (...) {
        return std::current_exception();
      }
    }
    return std::make_exception_ptr(NoEntryError(
        prefix + ": " + resolution.fallback_reason + "; the fallback to " +
        resolution.handler->typestr() + " failed too: " + what));
  }
}

// Waits for every load still running: they may write into the caller's
// buffers, which must not be given back while they do.
void wait_all(std::vector<std::future<Value>>& futures) {
  for (auto& f : futures) {
    if (f.valid()) f.wait();
  }
}

Checkpointables load_from(const internal::OpenedCheckpoint& checkpoint,
                          const std::vector<std::string>& available,
                          const Checkpointables& abstracts) {
  internal::start_up();
  const CheckpointInfo& info = checkpoint.info;
  const Checkpointables requested =
      requested_checkpointables(checkpoint, available, abstracts);
  const Context& context = Context::current();
  std::vector<internal::LoadResolution> resolutions;
  std::vector<std::future<Value>> futures;
  for (const auto& [name, abstract_value] : requested) {
    const Value* abstract_ptr =
        abstract_value.is_none() ? nullptr : &abstract_value;
    // Resolution and the load share one C view of the abstract value.
    std::unique_ptr<internal::SharedCValueView> shared;
    if (abstract_ptr) {
      shared = std::make_unique<internal::SharedCValueView>(*abstract_ptr);
    }
    internal::LoadResolution resolution;
    try {
      // What the handler reads is checked before it reads it.
      checkpoint.check(name);
      resolution = internal::resolve_for_checkpoint(context.registry(), info,
                                                    name, abstract_ptr);
      resolutions.push_back(resolution);
      futures.push_back(resolution.handler->load(
          internal::call_context(context, name, checkpoint.folder_of(name)),
          abstract_ptr));
    } catch (...) {
      std::exception_ptr e = load_failure(checkpoint, name, resolution);
      wait_all(futures);
      std::rethrow_exception(e);
    }
  }
  Checkpointables out;
  for (size_t i = 0; i < futures.size(); ++i) {
    try {
      out.emplace_back(requested[i].first, futures[i].get());
    } catch (...) {
      std::exception_ptr e =
          load_failure(checkpoint, requested[i].first, resolutions[i]);
      wait_all(futures);
      std::rethrow_exception(e);
    }
  }
  return out;
}

std::optional<Value> metadata_of(const internal::OpenedCheckpoint& checkpoint,
                                 const std::string& name) {
  internal::start_up();
  const Context& context = Context::current();
  checkpoint.check(name);
  HandlerPtr handler =
      resolve_checkpointable_handler(checkpoint.info, name, nullptr);
  try {
    return handler->metadata(
        internal::call_context(context, name, checkpoint.folder_of(name)));
  } catch (const Error& e) {
    throw_error(e.kind(), checkpoint.dir->shown(e.what()));
  }
}

}  // namespace

Checkpointables load_checkpointables(const fs::path& path,
                                     const Checkpointables& abstracts) {
  return internal::with_errors_converted([&] {
    return internal::with_opened_checkpoint(
        path, [&](const internal::OpenedCheckpoint& checkpoint) {
          return load_from(checkpoint, checkpoint.checkpointables(), abstracts);
        });
  });
}

Value load(const fs::path& path, const Value* abstract_value,
           const std::string& name) {
  return internal::with_errors_converted([&] {
    return internal::with_opened_checkpoint(
        path, [&](const internal::OpenedCheckpoint& checkpoint) {
          const std::vector<std::string> available =
              checkpoint.checkpointables();
          const std::string resolved =
              name == kAutoName ? auto_name(checkpoint, available) : name;
          Value abstract_copy = abstract_value ? *abstract_value : Value();
          return load_from(checkpoint, available,
                           {{resolved, abstract_copy}})[0]
              .second;
        });
  });
}

Metadata metadata(const fs::path& path, const std::string& name) {
  return internal::with_errors_converted([&] {
    return internal::with_opened_checkpoint(
        path, [&](const internal::OpenedCheckpoint& checkpoint) {
          Metadata out;
          out.checkpoint = checkpoint.info;
          const std::string resolved =
              name == kAutoName
                  ? auto_name(checkpoint, checkpoint.checkpointables())
                  : name;
          out.name = resolved;
          try {
            if (auto value = metadata_of(checkpoint, resolved)) {
              out.metadata = *value;
            }
          } catch (...) {
            std::rethrow_exception(internal::current_exception_as_error(
                "failed to read the metadata of checkpointable '" + resolved +
                "' in " + path.string()));
          }
          return out;
        });
  });
}

CheckpointablesMetadata checkpointables_metadata(const fs::path& path) {
  return internal::with_errors_converted([&] {
    return internal::with_opened_checkpoint(
        path, [&](const internal::OpenedCheckpoint& checkpoint) {
          CheckpointablesMetadata out;
          out.checkpoint = checkpoint.info;
          for (const std::string& name : checkpoint.checkpointables()) {
            Value value;
            try {
              if (auto m = metadata_of(checkpoint, name)) value = *m;
            } catch (const Error& e) {
              // Orbax's rule: a handler without metadata yields none. Damaged
              // metadata is never passed over.
              if (e.kind() == ErrorKind::kDataLoss) {
                throw DataLossError("the metadata of checkpointable '" + name +
                                    "' in " + path.string() +
                                    " is damaged: " + e.what());
              }
              internal::log(e.kind() == ErrorKind::kUnimplemented
                                ? CKPT_LOG_DEBUG
                                : CKPT_LOG_WARNING,
                            "no metadata for checkpointable '" + name +
                                "' in " + path.string() + ": " + e.what());
            }
            out.metadata.emplace_back(name, std::move(value));
          }
          return out;
        });
  });
}

}  // namespace ckpt
