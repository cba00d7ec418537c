// ckpt/registry.h -- which handler saves and loads which checkpointable.
//
// A registry is an ordered list of entries (handler, optional checkpointable
// name) plus secondary typestrs per handler type. Resolution scans it
// newest-first, so a handler registered later wins ties. The rules are
// Orbax v1's: see resolve_save_handler and resolve_load_handler.
#ifndef CKPT_REGISTRY_H_
#define CKPT_REGISTRY_H_

#include <ckpt/export.h>
#include <ckpt/handler.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace ckpt {

struct CKPT_API RegistryEntry {
  HandlerPtr handler;
  std::optional<std::string> checkpointable_name;  // nullopt: general
};

// The interface resolution works on. Implement it to plug in a registry of
// your own; Registry is the default.
class CKPT_API HandlerRegistry {
 public:
  virtual ~HandlerRegistry() = default;

  // With a name: AlreadyExistsError if that name has an entry. Without (or
  // empty): AlreadyExistsError if the handler's type is in any entry.
  // secondary_typestrs, when given, replace the type's secondary typestrs.
  virtual HandlerRegistry& add(
      HandlerPtr handler,
      std::optional<std::string> checkpointable_name = std::nullopt,
      std::optional<std::vector<std::string>> secondary_typestrs =
          std::nullopt) = 0;
  // The handler of the first entry for `checkpointable_name`; NoEntryError
  // when there is none.
  virtual HandlerPtr get(const std::string& checkpointable_name) const = 0;
  virtual bool has(const std::string& checkpointable_name) const = 0;
  // Registration order.
  virtual std::vector<RegistryEntry> get_all_entries() const = 0;
  // The secondary typestrs of `handler`'s type: the last list given to add,
  // else the type's own.
  virtual std::vector<std::string> get_secondary_typestrs(
      const Handler& handler) const {
    return handler.info().secondary_typestrs;
  }
};

using RegistryPtr = std::shared_ptr<HandlerRegistry>;

// The default registry. Thread-safe.
class CKPT_API Registry : public HandlerRegistry {
 public:
  Registry() = default;
  Registry(const Registry& other);

  Registry& add(HandlerPtr handler,
                std::optional<std::string> checkpointable_name = std::nullopt,
                std::optional<std::vector<std::string>> secondary_typestrs =
                    std::nullopt) override;
  HandlerPtr get(const std::string& checkpointable_name) const override;
  bool has(const std::string& checkpointable_name) const override;
  std::vector<RegistryEntry> get_all_entries() const override;
  std::vector<std::string> get_secondary_typestrs(
      const Handler& handler) const override;

 private:
  mutable std::mutex mutex_;
  std::vector<RegistryEntry> entries_;
  std::map<std::string, std::vector<std::string>> secondary_typestrs_;
};

// A view that refuses add() (InvalidArgumentError) and forwards the rest.
class CKPT_API ReadOnlyRegistry : public HandlerRegistry {
 public:
  explicit ReadOnlyRegistry(std::shared_ptr<const HandlerRegistry> registry);
  ReadOnlyRegistry& add(
      HandlerPtr handler,
      std::optional<std::string> checkpointable_name = std::nullopt,
      std::optional<std::vector<std::string>> secondary_typestrs =
          std::nullopt) override;
  HandlerPtr get(const std::string& checkpointable_name) const override;
  bool has(const std::string& checkpointable_name) const override;
  std::vector<RegistryEntry> get_all_entries() const override;
  std::vector<std::string> get_secondary_typestrs(
      const Handler& handler) const override;

 private:
  std::shared_ptr<const HandlerRegistry> registry_;
};

// The process-wide registry: the built-in stateful handler, then the
// default registrations of every plugin found on the search path (loaded on
// first use), then whatever register_handler and load_plugin add.
CKPT_API Registry& global_registry();

// A new registry holding a copy of the global entries (if include_global),
// then `other`'s entries. Later global registrations do not appear in it.
CKPT_API std::shared_ptr<Registry> local_registry(
    const HandlerRegistry* other = nullptr, bool include_global = true);

// Adds to the global registry; returns the handler.
CKPT_API HandlerPtr register_handler(
    HandlerPtr handler,
    std::optional<std::string> checkpointable_name = std::nullopt,
    std::optional<std::vector<std::string>> secondary_typestrs = std::nullopt);

// The handler that saves `value` as `checkpointable_name` (Orbax's save
// rules). InvalidArgumentError for a none value; NoEntryError naming the
// checkpointable, the value and the available handlers.
CKPT_API HandlerPtr resolve_save_handler(const HandlerRegistry& registry,
                                         const std::string& checkpointable_name,
                                         const Value& value);

// The handler that loads `checkpointable_name`, recorded in the checkpoint
// as `recorded_typestr` (if known), into `abstract_value` (null = as saved).
// Orbax's load rules, without the checkpoint-level fallback to `state`.
CKPT_API HandlerPtr resolve_load_handler(
    const HandlerRegistry& registry, const std::string& checkpointable_name,
    const Value* abstract_value,
    const std::optional<std::string>& recorded_typestr);

}  // namespace ckpt

#endif  // CKPT_REGISTRY_H_
