// The built-in handler of StatefulCheckpointable host objects. It lives in
// the core because it calls C++ virtual functions on host objects.
#include <ckpt/errors.h>
#include <ckpt/handler.h>
#include <ckpt/stateful.h>

#include "handlers/handler_types.h"

namespace ckpt::internal {

namespace {

class StatefulHandler final : public Handler {
 public:
  explicit StatefulHandler(std::shared_ptr<const HandlerInfo> info)
      : info_(std::move(info)) {}

  const HandlerInfo& info() const override { return *info_; }

  bool is_handleable(const Value& value) const override {
    return value.kind() == Value::Kind::kStateful;
  }
  Answer is_abstract_handleable(const Value& abstract_value) const override {
    return abstract_value.kind() == Value::Kind::kStateful ? Answer::kYes
                                                           : Answer::kNo;
  }

  std::future<void> save(const CallContext& call,
                         const Value& value) const override {
    BackgroundWork work = value.as_stateful()->save(call.directory);
    if (!work) {
      std::promise<void> done;
      done.set_value();
      return done.get_future();
    }
    return run_in_background(std::move(work));
  }

  std::future<Value> load(const CallContext& call,
                          const Value* abstract_value) const override {
    if (!abstract_value || abstract_value->kind() != Value::Kind::kStateful) {
      throw InvalidArgumentError(
          "checkpointable '" + call.checkpointable_name +
          "' was saved by a StatefulCheckpointable: pass the instance to "
          "restore into as its abstract checkpointable");
    }
    auto object = abstract_value->as_stateful();
    BackgroundWork work = object->load(call.directory);
    auto promise = std::make_shared<std::promise<Value>>();
    std::future<Value> future = promise->get_future();
    std::future<void> done =
        run_in_background([work = std::move(work), object, promise] {
          try {
            if (work) work();
            promise->set_value(Value::stateful(object));
          } catch (...) {
            promise->set_exception(std::current_exception());
          }
        });
    (void)done;
    return future;
  }

 private:
  std::shared_ptr<const HandlerInfo> info_;
};

}  // namespace

std::shared_ptr<const HandlerType> stateful_handler_type() {
  static const std::shared_ptr<const HandlerType> type = [] {
    auto info = std::make_shared<HandlerInfo>();
    info->typestr = "ckpt.StatefulCheckpointableHandler";
    info->description = "host objects implementing StatefulCheckpointable";
    info->origin = "built-in";
    info->plugin_name = "core";
    info->abi_major = CKPT_ABI_MAJOR;
    info->abi_minor = CKPT_ABI_MINOR;
    info->load_needs_abstract = true;
    auto type = std::make_shared<HandlerType>();
    type->info = *info;
    type->factory = [info](const nlohmann::json&) -> HandlerPtr {
      return std::make_shared<StatefulHandler>(info);
    };
    return type;
  }();
  return type;
}

}  // namespace ckpt::internal
