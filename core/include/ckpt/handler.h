// ckpt/handler.h -- checkpointable handlers as the core sees them.
//
// A Handler saves one checkpointable into one folder and loads it back.
// Most handlers come from plugins (see ckpt/plugins.h and sdk/); a host app
// may also implement Handler directly in C++. Handlers are immutable once
// made and shared (HandlerPtr); every method is thread-safe.
#ifndef CKPT_HANDLER_H_
#define CKPT_HANDLER_H_

#include <ckpt/export.h>
#include <ckpt/value.h>

#include <cstdint>
#include <filesystem>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace ckpt {

// A handler type: what a plugin registers.
struct CKPT_API HandlerInfo {
  std::string typestr;  // stable id recorded in checkpoints
  std::vector<std::string> secondary_typestrs;
  std::string description;
  std::string origin;  // the plugin file, "built-in" or "host"
  std::string plugin_name;
  uint32_t abi_major = 0;
  uint32_t abi_minor = 0;
  // Load cannot make a value from the files alone: it needs an abstract
  // checkpointable (a protobuf type, an instance to fill). Tools check such
  // a checkpointable's files but do not load it.
  bool load_needs_abstract = false;
  // Files (plain names in a checkpointable's folder) whose bytes the handler
  // checks itself at load: the core records only their size (ABI 1.2).
  std::vector<std::string> self_checked_files;
  // Likewise every file of the folder whose name starts with one of these
  // (ABI 1.3; e.g. one file per process).
  std::vector<std::string> self_checked_prefixes;
};

// Where one handler call runs.
struct CKPT_API CallContext {
  std::string checkpointable_name;
  std::filesystem::path directory;  // <checkpoint>/<name>
  int process_index = 0;
  int process_count = 1;
  bool is_primary_host = true;
  unsigned file_mode = 0644;
  nlohmann::json options = nlohmann::json::object();
};

enum class Answer { kNo, kYes, kDefer };

class CKPT_API Handler {
 public:
  virtual ~Handler() = default;

  virtual const HandlerInfo& info() const = 0;
  const std::string& typestr() const { return info().typestr; }
  // The instance configuration (e.g. {"filename": "cfg.json"}).
  virtual const nlohmann::json& config() const;

  virtual bool is_handleable(const Value& value) const = 0;
  virtual Answer is_abstract_handleable(const Value& abstract_value) const = 0;

  // Blocking tier on the calling thread: when it returns, `value` may
  // change. The future completes when the background tier has written
  // everything; it carries the background error, if any.
  virtual std::future<void> save(const CallContext& call,
                                 const Value& value) const = 0;
  // abstract_value null = load as saved.
  virtual std::future<Value> load(const CallContext& call,
                                  const Value* abstract_value) const = 0;
  // The checkpointable's metadata; nullopt = none. Throws
  // UnimplementedError when the handler has no metadata.
  virtual std::optional<Value> metadata(const CallContext& call) const;

  // After every process's save of the checkpointable succeeded (background
  // tiers included), on the primary host only, before the commit: writes
  // what depends on every process's files (e.g. one index over per-process
  // files) into call.directory. A throw fails the save. Does nothing unless
  // overridden (ABI 1.4's finalize_save for a plugin).
  virtual void finalize_save(const CallContext& call) const;
};

using HandlerPtr = std::shared_ptr<const Handler>;

// An instance of the handler type `typestr` (a primary typestr of a loaded
// plugin or the built-in stateful handler) with an optional configuration.
// Throws NoEntryError listing the known types when there is none.
CKPT_API HandlerPtr
make_handler(const std::string& typestr,
             const nlohmann::json& config = nlohmann::json::object());

// Every handler type known to this process, in registration order.
CKPT_API std::vector<HandlerInfo> handler_types();

// Runs `work` on the core's background pool.
CKPT_API std::future<void> run_in_background(std::function<void()> work);

}  // namespace ckpt

#endif  // CKPT_HANDLER_H_
