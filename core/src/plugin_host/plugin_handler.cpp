// Handler over a plugin's ckpt_handler_type: every call crosses the C ABI.
#include "plugin_host/plugin_handler.h"

#include <ckpt/errors.h>
#include <ckpt/handler.h>

#include <memory>
#include <string>

#include "handlers/handler_types.h"
#include "plugin_host/host_api.h"
#include "value/value_bridge.h"

namespace ckpt::internal {

namespace {

// The C view of a CallContext; owns the strings it points at.
class CCallContext {
 public:
  explicit CCallContext(const CallContext& call)
      : name_(call.checkpointable_name),
        directory_(call.directory.string()),
        options_(call.options.dump()) {
    c_.struct_size = CKPT_CALL_CONTEXT_STRUCT_SIZE;
    c_.checkpointable_name = name_.c_str();
    c_.directory = directory_.c_str();
    c_.process_index = call.process_index;
    c_.process_count = call.process_count;
    c_.is_primary_host = call.is_primary_host ? 1 : 0;
    c_.file_mode = call.file_mode;
    c_.options_json = options_.c_str();
  }
  const ckpt_call_context* get() const { return &c_; }

 private:
  std::string name_, directory_, options_;
  ckpt_call_context c_{};
};

class PluginHandler final : public Handler {
 public:
  PluginHandler(std::shared_ptr<const ckpt_handler_type> table,
                std::shared_ptr<const HandlerInfo> info, nlohmann::json config,
                void* instance)
      : table_(table),
        info_(std::move(info)),
        config_(std::move(config)),
        instance_(instance) {}
  ~PluginHandler() override { table_->destroy_instance(instance_); }

  const HandlerInfo& info() const override { return *info_; }
  const nlohmann::json& config() const override { return config_; }

  bool is_handleable(const Value& value) const override {
    auto view = SharedCValueView::of(value);
    if (!speaks(*view)) return false;
    return table_->is_handleable(instance_, view->get()) != 0;
  }

  Answer is_abstract_handleable(const Value& abstract_value) const override {
    auto view = SharedCValueView::of(abstract_value);
    if (!speaks(*view)) return Answer::kNo;
    switch (table_->is_abstract_handleable(instance_, view->get())) {
      case CKPT_ANSWER_YES:
        return Answer::kYes;
      case CKPT_ANSWER_DEFER:
        return Answer::kDefer;
      default:
        return Answer::kNo;
    }
  }

  std::future<void> save(const CallContext& call,
                         const Value& value) const override {
    auto view = SharedCValueView::of(value);
    require_speaks(*view);
    ckpt_value_ref ref{view};
    CCallContext c_call(call);
    auto* completion = new ckpt_completion();
    completion->what = what();
    std::future<void> future = completion->saved.get_future();
    ckpt_save_args args{};
    args.struct_size = CKPT_SAVE_ARGS_STRUCT_SIZE;
    args.context = c_call.get();
    args.value = view->get();
    args.value_ref = &ref;
    args.completion = completion;
    if (ckpt_error* error = table_->save(instance_, &args)) {
      delete completion;
      throw_c_error(error, what());
    }
    return future;
  }

  std::future<Value> load(const CallContext& call,
                          const Value* abstract_value) const override {
    std::shared_ptr<const CValueView> view;
    if (abstract_value) {
      view = SharedCValueView::of(*abstract_value);
      require_speaks(*view);
    }
    ckpt_value_ref ref{view};
    CCallContext c_call(call);
    auto* completion = new ckpt_completion();
    completion->what = what();
    std::future<Value> future = completion->loaded.get_future();
    ckpt_load_args args{};
    args.struct_size = CKPT_LOAD_ARGS_STRUCT_SIZE;
    args.context = c_call.get();
    args.abstract_value = view ? view->get() : nullptr;
    args.abstract_ref = view ? &ref : nullptr;
    args.completion = completion;
    if (ckpt_error* error = table_->load(instance_, &args)) {
      delete completion;
      throw_c_error(error, what());
    }
    return future;
  }

  std::optional<Value> metadata(const CallContext& call) const override {
    if (!table_->metadata) {
      throw UnimplementedError(what() + ": metadata is not supported");
    }
    CCallContext c_call(call);
    ckpt_owned_value result{};
    result.struct_size = CKPT_OWNED_VALUE_STRUCT_SIZE;
    ckpt_metadata_args args{};
    args.struct_size = CKPT_METADATA_ARGS_STRUCT_SIZE;
    args.context = c_call.get();
    args.result = &result;
    ckpt_error* error = table_->metadata(instance_, &args);
    std::shared_ptr<void> keepalive;
    if (result.deleter) {
      keepalive = std::shared_ptr<void>(
          result.deleter_ctx,
          [deleter = result.deleter](void* ctx) { deleter(ctx); });
    }
    if (error) throw_c_error(error, what());
    if (!result.value) return std::nullopt;
    Value metadata;
    try {
      metadata = from_c_value(*result.value, keepalive);
    } catch (const Error& e) {
      throw PluginError(what() + ": " + e.what());
    }
    if (metadata.is_none()) return std::nullopt;
    return metadata;
  }

  void finalize_save(const CallContext& call) const override {
    if (!table_->finalize_save) return;
    CCallContext c_call(call);
    ckpt_finalize_args args{};
    args.struct_size = CKPT_FINALIZE_ARGS_STRUCT_SIZE;
    args.context = c_call.get();
    if (ckpt_error* error = table_->finalize_save(instance_, &args)) {
      throw_c_error(error, what());
    }
  }

 private:
  std::string what() const {
    return "handler " + info_->typestr + " (" + info_->origin + ")";
  }

  // abi.h convention 10: a plugin is never shown what its minor lacks.
  bool speaks(const CValueView& view) const {
    return info_->abi_minor >= view.required_minor();
  }
  void require_speaks(const CValueView& view) const {
    if (speaks(view)) return;
    throw InvalidArgumentError(
        what() + " speaks ABI " + std::to_string(info_->abi_major) + "." +
        std::to_string(info_->abi_minor) + " and cannot take this value (" +
        (view.required_minor() >= 3
             ? std::string("a sharded array or spec needs ABI 1.3")
             : "an array spec of unknown dtype needs ABI 1." +
                   std::to_string(view.required_minor()) + "; give the dtype") +
        ")");
  }

  std::shared_ptr<const ckpt_handler_type> table_;
  std::shared_ptr<const HandlerInfo> info_;
  nlohmann::json config_;
  void* instance_;
};

}  // namespace

bool is_plugin_handler(const Handler& handler) {
  return dynamic_cast<const PluginHandler*>(&handler) != nullptr;
}

std::function<HandlerPtr(const nlohmann::json&)> plugin_handler_factory(
    std::shared_ptr<const ckpt_handler_type> table,
    std::shared_ptr<const HandlerInfo> info) {
  return [table, info](const nlohmann::json& config) -> HandlerPtr {
    std::string text = config.is_null() ? "{}" : config.dump();
    void* instance = nullptr;
    if (ckpt_error* error =
            table->create_instance(table->type_data, text.c_str(), &instance)) {
      throw_c_error(error, "handler " + info->typestr + " (" + info->origin +
                               ") with configuration " + text);
    }
    return std::make_shared<PluginHandler>(table, info, config, instance);
  };
}

}  // namespace ckpt::internal
