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
//
// Deadlines. Every save has one: the current Context's async_timeout
// (ckpt/context.h, default 20 minutes), counted from the start of the call.
//  - An async save whose background tiers have not all ended by then fails
//    with TimeoutError (from result() and on_complete), naming the
//    checkpointables still being written and their handlers.
//  - A synchronous save (save, save_checkpointables) waits for its
//    background tiers until the deadline. Past it:
//    * when every tier still running belongs to a plugin handler and was
//      given no borrowed array (only owned or shared ones, which the
//      plugin keeps alive through its retain), the call throws
//      TimeoutError naming each such handler (typestr and plugin file) and
//      checkpointable, and the caller may go on. Nothing is committed:
//      the final path stays as it was, and the temporary folder beside it
//      (<path>.orbax-checkpoint-tmp-*) is removed when those handlers end,
//      or at exit. The late tiers may still read the arrays (they stay
//      alive); what the caller writes into them meanwhile only reaches a
//      checkpoint that is never committed.
//    * when a tier still running was given a borrowed array
//      (Array::borrow: memory the caller could free once the call
//      returns), or its handler runs in the host process (the built-in
//      stateful handler, a host C++ Handler: it may use anything of the
//      caller's), the call cannot return safely: it logs a warning naming
//      the handler and checkpointable, and keeps waiting; the save then
//      commits as usual if the tier succeeds.
//  - At exit (after main returns, or exit()), the process waits for the
//    saves in flight until the last of their deadlines (a save that already
//    failed, e.g. timed out, is not waited for), or for
//    CKPT_EXIT_TIMEOUT_SECONDS seconds (a decimal number) when that
//    environment variable is set. Then it logs, as an error, each save it
//    abandons (the path, the checkpointables and handlers still running,
//    the temporary folder it removes), and exits; threads still running a
//    handler end with the process.
#ifndef CKPT_CHECKPOINT_H_
#define CKPT_CHECKPOINT_H_

#include <ckpt/export.h>
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

struct CKPT_API SaveOptions {
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
// save; the process waits for saves in flight when it exits, up to their
// deadlines (see "Deadlines" above).
class CKPT_API AsyncSave {
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

// Synchronous saves: return once the checkpoint is committed; throw the
// first error. Past the Context's async_timeout: TimeoutError, or a warning
// and a longer wait when the caller's memory may still be read (see
// "Deadlines" above).
CKPT_API void save(const std::filesystem::path& path, const Value& tree,
                   const SaveOptions& options = {});
CKPT_API AsyncSave save_async(const std::filesystem::path& path,
                              const Value& tree,
                              const SaveOptions& options = {});
CKPT_API void save_checkpointables(const std::filesystem::path& path,
                                   const Checkpointables& checkpointables,
                                   const SaveOptions& options = {});
// Returns once every handler's blocking tier has run: the caller may then
// change its values. The final path appears only at commit.
CKPT_API AsyncSave save_checkpointables_async(
    const std::filesystem::path& path, const Checkpointables& checkpointables,
    const SaveOptions& options = {});

// Loads one checkpointable: `name` (AUTO: `state` if it is a pytree folder,
// else the first subfolder, alphabetically, that holds a pytree), into
// `abstract_value` (null: as saved).
CKPT_API Value load(const std::filesystem::path& path,
                    const Value* abstract_value = nullptr,
                    const std::string& name = kAutoName);

// Loads the named checkpointables (a none abstract: as saved), touching no
// other folder. An empty list loads every checkpointable.
CKPT_API Checkpointables load_checkpointables(
    const std::filesystem::path& path, const Checkpointables& abstracts = {});

// The handler load_checkpointables would use for checkpointable `name` of
// the checkpoint `info` describes, in the current Context: Orbax's load
// resolution with the checkpoint-level fallback to the handler bound to
// `state`. NoEntryError when there is none.
CKPT_API HandlerPtr resolve_checkpointable_handler(
    const CheckpointInfo& info, const std::string& name,
    const Value* abstract_value = nullptr);

// The typestr recorded for checkpointable `name` when no handler of the
// current Context's registry claims it (as typestr or secondary typestr):
// the plugin that saved it is not loaded. nullopt when one claims it or
// none is recorded. Loading such a checkpointable falls back to the handler
// bound to `state`; when that fails too, the error says this first.
CKPT_API std::optional<std::string> unclaimed_typestr(
    const CheckpointInfo& info, const std::string& name);

struct CKPT_API Metadata {
  CheckpointInfo checkpoint;
  Value metadata;    // the pytree's abstract tree; none if unsupported
  std::string name;  // the checkpointable's (AUTO resolved)
};
struct CKPT_API CheckpointablesMetadata {
  CheckpointInfo checkpoint;
  Checkpointables metadata;  // none for handlers without metadata
};

CKPT_API Metadata metadata(const std::filesystem::path& path,
                           const std::string& name = kAutoName);
CKPT_API CheckpointablesMetadata
checkpointables_metadata(const std::filesystem::path& path);

// Blocks until every save started in this process has its outcome
// (committed, failed or timed out). Background tiers of saves that timed
// out may still be running.
CKPT_API void wait_for_pending_saves();

}  // namespace ckpt

#endif  // CKPT_CHECKPOINT_H_
