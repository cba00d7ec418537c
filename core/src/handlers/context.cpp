#include "handlers/context.h"

#include <ckpt/context.h>
#include <ckpt/errors.h>
#include <ckpt/plugins.h>

#include "handlers/registry.h"
#include "value/utf8_checks.h"

namespace ckpt {

namespace {

thread_local const Context* current_context = nullptr;

// The live global registry behind a read-only view: calls outside any
// Context see the global registry as it is at the time of the call.
class GlobalView final : public HandlerRegistry {
 public:
  GlobalView& add(HandlerPtr, std::optional<std::string>,
                  std::optional<std::vector<std::string>>) override {
    throw InvalidArgumentError(
        "the default context's registry is read-only; use register_handler() "
        "or a local_registry()");
  }
  HandlerPtr get(const std::string& name) const override {
    return global_registry().get(name);
  }
  bool has(const std::string& name) const override {
    return global_registry().has(name);
  }
  std::vector<RegistryEntry> get_all_entries() const override {
    return global_registry().get_all_entries();
  }
  std::vector<std::string> get_secondary_typestrs(
      const Handler& handler) const override {
    return global_registry().get_secondary_typestrs(handler);
  }
};

// The collectives' view of the job must be one ckpt can use.
void check_multiprocessing(const MultiprocessingOptions& m) {
  const int count = m.process_count();
  const int index = m.process_index();
  if (count < 1 || index < 0 || index >= count) {
    throw InvalidArgumentError("Context: the collectives report process " +
                               std::to_string(index) + " of " +
                               std::to_string(count) +
                               " (an index must lie in [0, process count))");
  }
  if (m.primary_host < 0 || m.primary_host >= count) {
    throw InvalidArgumentError(
        "Context: primary_host " + std::to_string(m.primary_host) +
        " must lie in [0, " + std::to_string(count) + "), the processes of " +
        (m.collectives ? "the collectives" : "a single-process run"));
  }
}

}  // namespace

CheckpointablesOptions CheckpointablesOptions::create_with_handlers(
    const std::vector<std::pair<std::string, HandlerPtr>>& handlers) {
  auto registry = local_registry();
  for (const auto& [name, handler] : handlers) {
    if (name.empty()) {
      throw InvalidArgumentError(
          "create_with_handlers: a checkpointable name may not be empty");
    }
    registry->add(handler, name);
  }
  CheckpointablesOptions options;
  options.registry = registry;
  return options;
}

Context::Context(ContextOptions options) : options_(std::move(options)) {
  check_multiprocessing(options_.multiprocessing);
  internal::check_json_text(options_.handler_options,
                            "Context: handler_options");
  std::shared_ptr<const HandlerRegistry> base =
      options_.checkpointables_options.registry;
  if (!options_.plugin_paths.empty()) {
    auto registry = base ? local_registry(base.get(), false) : local_registry();
    for (const auto& folder : options_.plugin_paths) {
      load_plugin_folder(folder, options_.allow_insecure_plugin_paths,
                         registry.get());
    }
    base = registry;
  }
  if (!base) {
    // A snapshot: later global registrations do not show in this scope.
    base = local_registry();
  }
  registry_ = std::make_shared<ReadOnlyRegistry>(base);
  previous_ = current_context;
  current_context = this;
}

Context::~Context() {
  if (pushed_) current_context = previous_;
}

const Context& Context::current() {
  if (current_context) return *current_context;
  // One for the process: it is immutable and its registry is stateless.
  static const Context* fallback = [] {
    auto* context = new Context(ContextOptions{});
    current_context = nullptr;  // the fallback is never on a stack
    context->pushed_ = false;
    context->registry_ = std::make_shared<GlobalView>();
    return context;
  }();
  return *fallback;
}

}  // namespace ckpt

namespace ckpt::internal {

CallContext call_context(const Context& context, const std::string& name,
                         const std::filesystem::path& directory) {
  const ContextOptions& o = context.options();
  CallContext call;
  call.checkpointable_name = name;
  call.directory = directory;
  call.process_index = context.process_index();
  call.process_count = context.process_count();
  call.is_primary_host = context.is_primary_host();
  call.file_mode = o.file_mode;
  call.options = o.handler_options;
  return call;
}

}  // namespace ckpt::internal
