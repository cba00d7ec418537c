// ckpt/checkpoint.h -- saving and loading checkpoints (Orbax v1's top-level
// calls).
//
//   ckpt::save(path, tree);                       // one pytree, as "state"
//   ckpt::Value tree = ckpt::load(path);          // as saved
//   ckpt::save_checkpointables(path, {{"params", params}, {"config", cfg}});
//   auto parts = ckpt::load_checkpointables(path, {{"config", {}}});
//
// A checkpoint is a folder: _CHECKPOINT_METADATA, the orbax.checkpoint
// marker, and one subfolder per checkpointable written by its handler. A
// save writes a temporary folder and commits it by rename, so the final
// path is either absent or complete. Every call uses the options of the
// current Context (ckpt/context.h).
//
// Errors (ckpt/errors.h): AlreadyExistsError (destination exists),
// InvalidArgumentError (empty, reserved or escaping names; none values),
// NoEntryError (no handler), InvalidLayoutError (not a complete checkpoint),
// NotFoundError (unknown checkpointable), TimeoutError, and the handlers'
// own errors wrapped with "failed to save/load checkpointable <name>".
#ifndef CKPT_CHECKPOINT_H_
#define CKPT_CHECKPOINT_H_

#include <ckpt/handler.h>
#include <ckpt/layout.h>
#include <ckpt/value.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ckpt {

// Named checkpointables (or abstract checkpointables), in order.
using Checkpointables = std::vector<std::pair<std::string, Value>>;

struct SaveOptions {
  // Replace an existing checkpoint at the path. The old one stays intact
  // until the new one is committed.
  bool overwrite = false;
  // Stored in _CHECKPOINT_METADATA; must be a JSON object.
  nlohmann::json custom_metadata = nlohmann::json::object();
  // Saved as the `metrics` checkpointable (by the handler registered for
  // that name: JSON in metrics/metrics) and recorded in _CHECKPOINT_METADATA.
  std::optional<nlohmann::json> metrics;
  // Async saves: called once, on a background thread, after the commit
  // (null) or the failure (its exception).
  std::function<void(std::exception_ptr)> on_complete;
};

// The pending result of an async save. Destroying it does not cancel the
// save; the core waits for in-flight saves before the process exits.
class AsyncSave {
 public:
  struct State;
  explicit AsyncSave(std::shared_ptr<State> state);
  AsyncSave() = default;

  // Waits for the commit; rethrows the first background error (naming the
  // checkpointable). With a timeout: TimeoutError when the save has not
  // finished by then (the save itself goes on).
  void result(
      std::optional<std::chrono::milliseconds> timeout = std::nullopt) const;
  bool done() const;
  const std::filesystem::path& path() const;

 private:
  std::shared_ptr<State> state_;
};

void save(const std::filesystem::path& path, const Value& tree,
          const SaveOptions& options = {});
AsyncSave save_async(const std::filesystem::path& path, const Value& tree,
                     const SaveOptions& options = {});
void save_checkpointables(const std::filesystem::path& path,
                          const Checkpointables& checkpointables,
                          const SaveOptions& options = {});
// Returns once every handler's blocking tier has run: the caller may then
// change its values. The final path appears only at commit.
AsyncSave save_checkpointables_async(const std::filesystem::path& path,
                                     const Checkpointables& checkpointables,
                                     const SaveOptions& options = {});

// Loads one checkpointable: `name` (AUTO: `state` if it is a pytree folder,
// else the first subfolder, alphabetically, that holds a pytree), into
// `abstract_value` (null: as saved).
Value load(const std::filesystem::path& path,
           const Value* abstract_value = nullptr,
           const std::string& name = kAutoName);

// Loads the named checkpointables (a none abstract: as saved), touching no
// other folder. An empty list loads every checkpointable.
Checkpointables load_checkpointables(const std::filesystem::path& path,
                                     const Checkpointables& abstracts = {});

// The handler load_checkpointables would use for checkpointable `name` of
// the checkpoint `info` describes, in the current Context: Orbax's load
// resolution with the checkpoint-level fallback to the handler bound to
// `state`. NoEntryError when there is none.
HandlerPtr resolve_checkpointable_handler(
    const CheckpointInfo& info, const std::string& name,
    const Value* abstract_value = nullptr);

// The typestr recorded for checkpointable `name` when no handler of the
// current Context's registry claims it (as typestr or secondary typestr):
// the plugin that saved it is not loaded. nullopt when one claims it or
// none is recorded. Loading such a checkpointable falls back to the handler
// bound to `state`; when that fails too, the error says this first.
std::optional<std::string> unclaimed_typestr(const CheckpointInfo& info,
                                             const std::string& name);

struct Metadata {
  CheckpointInfo checkpoint;
  Value metadata;  // the pytree's abstract tree; none if unsupported
};
struct CheckpointablesMetadata {
  CheckpointInfo checkpoint;
  Checkpointables metadata;  // none for handlers without metadata
};

Metadata metadata(const std::filesystem::path& path,
                  const std::string& name = kAutoName);
CheckpointablesMetadata checkpointables_metadata(
    const std::filesystem::path& path);

// Blocks until every async save started in this process has finished.
void wait_for_pending_saves();

}  // namespace ckpt

#endif  // CKPT_CHECKPOINT_H_
