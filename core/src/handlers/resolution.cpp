// Orbax v1's handler resolution rules (see registry.h).
#include "handlers/resolution.h"

#include <ckpt/checkpoint.h>
#include <ckpt/context.h>
#include <ckpt/errors.h>
#include <ckpt/plugins.h>
#include <ckpt/registry.h>

#include "util/logging.h"

namespace ckpt {

namespace {

std::string available_handlers(const std::vector<RegistryEntry>& entries) {
  std::string out;
  for (const RegistryEntry& e : entries) {
    out += out.empty() ? "" : ", ";
    out += e.handler->typestr();
    if (e.checkpointable_name) out += " (for '" + *e.checkpointable_name + "')";
  }
  return out.empty() ? "none" : out;
}

HandlerPtr scoped_handler(const std::vector<RegistryEntry>& entries,
                          const std::string& name) {
  for (const RegistryEntry& e : entries) {
    if (e.checkpointable_name == name) return e.handler;
  }
  return nullptr;
}

// Newest first, the first entry whose typestr or secondary typestr is
// `typestr`.
HandlerPtr claiming_handler(const HandlerRegistry& registry,
                            const std::vector<RegistryEntry>& entries,
                            const std::string& typestr) {
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    const Handler& h = *it->handler;
    if (h.typestr() == typestr) return it->handler;
    for (const std::string& t : registry.get_secondary_typestrs(h)) {
      if (t == typestr) return it->handler;
    }
  }
  return nullptr;
}

bool accepts(const Handler& handler, const Value& abstract_value) {
  return handler.is_abstract_handleable(abstract_value) == Answer::kYes;
}

}  // namespace

HandlerPtr resolve_save_handler(const HandlerRegistry& registry,
                                const std::string& name, const Value& value) {
  if (value.is_none()) {
    throw InvalidArgumentError("checkpointable '" + name +
                               "' is none; there is nothing to save");
  }
  const std::vector<RegistryEntry> entries = registry.get_all_entries();
  HandlerPtr possible;
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    if (!it->checkpointable_name && it->handler->is_handleable(value)) {
      possible = it->handler;
      break;
    }
  }
  if (value.kind() == Value::Kind::kStateful && possible) return possible;
  if (HandlerPtr scoped = scoped_handler(entries, name)) return scoped;
  if (possible) return possible;
  throw NoEntryError("no handler can save checkpointable '" + name + "' (" +
                     describe(value) +
                     "); available handlers: " + available_handlers(entries));
}

HandlerPtr resolve_load_handler(const HandlerRegistry& registry,
                                const std::string& name,
                                const Value* abstract_value,
                                const std::optional<std::string>& recorded) {
  const std::vector<RegistryEntry> entries = registry.get_all_entries();
  HandlerPtr explicit_handler = scoped_handler(entries, name);
  HandlerPtr by_typestr;
  if (recorded) {
    by_typestr = claiming_handler(registry, entries, *recorded);
    if (!by_typestr) {
      internal::log(CKPT_LOG_WARNING,
                    "checkpointable '" + name + "' was saved by handler '" +
                        *recorded + "', which no registered handler claims");
    }
  }
  const bool has_abstract = abstract_value && !abstract_value->is_none();
  if (has_abstract && abstract_value->kind() == Value::Kind::kStateful &&
      by_typestr && accepts(*by_typestr, *abstract_value)) {
    return by_typestr;
  }
  if (explicit_handler &&
      (!has_abstract || accepts(*explicit_handler, *abstract_value))) {
    return explicit_handler;
  }
  if (by_typestr && (!has_abstract || accepts(*by_typestr, *abstract_value))) {
    return by_typestr;
  }
  if (has_abstract) {
    for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
      if (!it->checkpointable_name && accepts(*it->handler, *abstract_value)) {
        return it->handler;
      }
    }
  }
  if (explicit_handler) return explicit_handler;
  throw NoEntryError(
      "no handler can load checkpointable '" + name + "'" +
      (recorded ? " (saved by " + *recorded + ")" : std::string()) +
      (has_abstract ? " into " + describe(*abstract_value) : std::string()) +
      "; available handlers: " + available_handlers(entries));
}

namespace internal {

std::optional<std::string> unclaimed_typestr(const HandlerRegistry& registry,
                                             const CheckpointInfo& info,
                                             const std::string& name) {
  std::optional<std::string> recorded = info.typestr_of(name);
  if (!recorded ||
      claiming_handler(registry, registry.get_all_entries(), *recorded)) {
    return std::nullopt;
  }
  return recorded;
}

std::string unclaimed_typestr_reason(const std::string& name,
                                     const std::string& typestr) {
  return "checkpointable '" + name + "' was saved by handler '" + typestr +
         "', which no loaded plugin claims (plugin folders searched: " +
         searched_plugin_folders_text() + ")";
}

LoadResolution resolve_for_checkpoint(const HandlerRegistry& registry,
                                      const CheckpointInfo& info,
                                      const std::string& name,
                                      const Value* abstract_value) {
  LoadResolution out;
  try {
    out.handler = resolve_load_handler(registry, name, abstract_value,
                                       info.typestr_of(name));
    return out;
  } catch (const NoEntryError& e) {
    const auto unclaimed = unclaimed_typestr(registry, info, name);
    const std::string reason =
        unclaimed ? unclaimed_typestr_reason(name, *unclaimed) : "";
    // Orbax's checkpoint-level fallback: the handler bound to `state`.
    if (registry.has(kDefaultCheckpointableName)) {
      out.handler = registry.get(kDefaultCheckpointableName);
      out.fallback_reason = reason;
      return out;
    }
    if (reason.empty()) throw;
    throw NoEntryError(reason + "; " + e.what());
  }
}

}  // namespace internal

std::optional<std::string> unclaimed_typestr(const CheckpointInfo& info,
                                             const std::string& name) {
  return internal::unclaimed_typestr(Context::current().registry(), info, name);
}

HandlerPtr resolve_checkpointable_handler(const CheckpointInfo& info,
                                          const std::string& name,
                                          const Value* abstract_value) {
  return internal::resolve_for_checkpoint(Context::current().registry(), info,
                                          name, abstract_value)
      .handler;
}

}  // namespace ckpt
