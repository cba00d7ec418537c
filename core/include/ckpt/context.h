// ckpt/context.h -- options bound to a scope of host code.
//
//   ckpt::Context ctx(ckpt::ContextOptions{.async_timeout = 60s});
//   ckpt::save(path, tree);  // uses ctx's options
//
// A Context is an RAII guard: constructing it makes it current on this
// thread until it is destroyed (contexts nest; destroy them in reverse
// order). Calls outside any Context use ContextOptions{}.
#ifndef CKPT_CONTEXT_H_
#define CKPT_CONTEXT_H_

#include <ckpt/export.h>
#include <ckpt/multiprocess.h>
#include <ckpt/registry.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace ckpt {

// Handlers bound to checkpointable names, for one Context.
struct CKPT_API CheckpointablesOptions {
  // A local registry (global entries first) with each handler added under
  // its name, e.g. {{"config", make_handler("ckpt.json.JsonHandler",
  // {{"filename", "config.json"}})}}.
  static CheckpointablesOptions create_with_handlers(
      const std::vector<std::pair<std::string, HandlerPtr>>& handlers);

  RegistryPtr registry;  // null: the default
};

struct CKPT_API ContextOptions {
  // The registry to resolve handlers in. Null: a read-only snapshot of the
  // global registry taken when the Context is made.
  CheckpointablesOptions checkpointables_options;
  // The deadline of every save, counted from its start (ckpt/checkpoint.h,
  // "Deadlines"). An async save not committed by then fails with
  // TimeoutError. A synchronous save fails with TimeoutError at it too,
  // unless a background tier still running may read the caller's memory (a
  // borrowed array, or a handler in the host process): then it logs a
  // warning naming the handler and checkpointable and keeps waiting. At
  // exit the process waits for saves in flight until their deadlines (or
  // CKPT_EXIT_TIMEOUT_SECONDS).
  std::chrono::milliseconds async_timeout = std::chrono::seconds(1200);
  // Many processes saving one checkpoint (ckpt/multiprocess.h): the
  // primary host and the job's collectives. Default: one process.
  MultiprocessingOptions multiprocessing;
  // fsync every file and folder of a checkpoint before it is committed, and
  // the parent folder after. Off only for scratch data you can lose.
  bool fsync = true;
  // Permission bits of new files and folders (before the umask).
  unsigned file_mode = 0644;
  unsigned directory_mode = 0755;
  // Extra plugin folders; their default registrations go to this Context's
  // registry only.
  std::vector<std::filesystem::path> plugin_paths;
  bool allow_insecure_plugin_paths = false;
  // Options handed to handlers, by handler family, e.g. {"pytree": {...}}.
  nlohmann::json handler_options = nlohmann::json::object();
};

class CKPT_API Context {
 public:
  explicit Context(ContextOptions options = {});
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  const ContextOptions& options() const { return options_; }
  // The registry calls in this scope resolve handlers in.
  const HandlerRegistry& registry() const { return *registry_; }
  int process_index() const { return options_.multiprocessing.process_index(); }
  int process_count() const { return options_.multiprocessing.process_count(); }
  bool is_primary_host() const {
    return options_.multiprocessing.is_primary_host();
  }

  // The innermost Context of this thread, or a default one.
  static const Context& current();

 private:
  ContextOptions options_;
  std::shared_ptr<const HandlerRegistry> registry_;
  const Context* previous_ = nullptr;
  bool pushed_ = true;
};

}  // namespace ckpt

#endif  // CKPT_CONTEXT_H_
