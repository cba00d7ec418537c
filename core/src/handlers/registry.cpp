#include "handlers/registry.h"

#include <ckpt/errors.h>
#include <ckpt/plugins.h>
#include <ckpt/registry.h>

#include "plugin_host/startup.h"

namespace ckpt {

namespace {

std::string name_or_general(const std::optional<std::string>& name) {
  return name ? "'" + *name + "'" : "general";
}

}  // namespace

Registry::Registry(const Registry& other) {
  std::lock_guard<std::mutex> lock(other.mutex_);
  entries_ = other.entries_;
  secondary_typestrs_ = other.secondary_typestrs_;
}

Registry& Registry::add(HandlerPtr handler,
                        std::optional<std::string> checkpointable_name,
                        std::optional<std::vector<std::string>> secondary) {
  if (!handler) throw InvalidArgumentError("Registry::add: null handler");
  if (checkpointable_name && checkpointable_name->empty()) {
    checkpointable_name.reset();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  for (const RegistryEntry& entry : entries_) {
    if (checkpointable_name) {
      if (entry.checkpointable_name == checkpointable_name) {
        throw AlreadyExistsError("checkpointable '" + *checkpointable_name +
                                 "' already has a handler entry (" +
                                 entry.handler->typestr() + ")");
      }
    } else if (entry.handler->typestr() == handler->typestr()) {
      throw AlreadyExistsError("handler " + handler->typestr() +
                               " is already registered (" +
                               name_or_general(entry.checkpointable_name) +
                               "); a general entry needs a handler type that "
                               "is in no entry yet");
    }
  }
  if (secondary) secondary_typestrs_[handler->typestr()] = *secondary;
  entries_.push_back({std::move(handler), std::move(checkpointable_name)});
  return *this;
}

HandlerPtr Registry::get(const std::string& checkpointable_name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const RegistryEntry& entry : entries_) {
    if (entry.checkpointable_name == checkpointable_name) return entry.handler;
  }
  throw NoEntryError("no handler entry for checkpointable '" +
                     checkpointable_name + "'");
}

bool Registry::has(const std::string& checkpointable_name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const RegistryEntry& entry : entries_) {
    if (entry.checkpointable_name == checkpointable_name) return true;
  }
  return false;
}

std::vector<RegistryEntry> Registry::get_all_entries() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_;
}

std::vector<std::string> Registry::get_secondary_typestrs(
    const Handler& handler) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = secondary_typestrs_.find(handler.typestr());
  if (it != secondary_typestrs_.end()) return it->second;
  return handler.info().secondary_typestrs;
}

ReadOnlyRegistry::ReadOnlyRegistry(
    std::shared_ptr<const HandlerRegistry> registry)
    : registry_(std::move(registry)) {
  if (!registry_) throw InvalidArgumentError("ReadOnlyRegistry: null registry");
}

ReadOnlyRegistry& ReadOnlyRegistry::add(
    HandlerPtr handler, std::optional<std::string>,
    std::optional<std::vector<std::string>>) {
  throw InvalidArgumentError(
      "this registry is read-only; cannot add handler " +
      (handler ? handler->typestr() : std::string("(null)")) +
      " (make a local_registry() to add handlers)");
}
HandlerPtr ReadOnlyRegistry::get(const std::string& name) const {
  return registry_->get(name);
}
bool ReadOnlyRegistry::has(const std::string& name) const {
  return registry_->has(name);
}
std::vector<RegistryEntry> ReadOnlyRegistry::get_all_entries() const {
  return registry_->get_all_entries();
}
std::vector<std::string> ReadOnlyRegistry::get_secondary_typestrs(
    const Handler& handler) const {
  return registry_->get_secondary_typestrs(handler);
}

namespace internal {

Registry& global_registry_data() {
  static auto* registry = new Registry();
  return *registry;
}

void copy_entries(const HandlerRegistry& from, Registry& to) {
  const std::vector<RegistryEntry> existing = to.get_all_entries();
  for (const RegistryEntry& entry : from.get_all_entries()) {
    bool already_there = false;
    for (const RegistryEntry& e : existing) {
      already_there |= e.handler == entry.handler &&
                       e.checkpointable_name == entry.checkpointable_name;
    }
    if (already_there) continue;
    to.add(entry.handler, entry.checkpointable_name,
           from.get_secondary_typestrs(*entry.handler));
  }
}

}  // namespace internal

Registry& global_registry() {
  internal::start_up();
  return internal::global_registry_data();
}

std::shared_ptr<Registry> local_registry(const HandlerRegistry* other,
                                         bool include_global) {
  auto registry = std::make_shared<Registry>();
  if (include_global) internal::copy_entries(global_registry(), *registry);
  if (other) internal::copy_entries(*other, *registry);
  return registry;
}

HandlerPtr register_handler(HandlerPtr handler,
                            std::optional<std::string> checkpointable_name,
                            std::optional<std::vector<std::string>> secondary) {
  global_registry().add(handler, std::move(checkpointable_name),
                        std::move(secondary));
  return handler;
}

}  // namespace ckpt
