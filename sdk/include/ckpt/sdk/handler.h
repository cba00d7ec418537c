// ckpt/sdk/handler.h -- a checkpointable handler as a plain C++ class.
//
// Derive from sdk::Handler, implement its virtual functions, and register
// the class from CKPT_PLUGIN (ckpt/sdk/plugin.h). The SDK turns the class
// into a ckpt_handler_type: exceptions become ABI errors, the returned
// background work runs on the host's pool, and completions are signalled
// exactly once.
//
// A handler class needs a constructor taking the instance configuration as
// JSON text (`{}` when none was given), e.g. {"filename": "config.json"}.
#ifndef CKPT_SDK_HANDLER_H_
#define CKPT_SDK_HANDLER_H_

#include <ckpt/abi.h>
#include <ckpt/sdk/error.h>
#include <ckpt/sdk/value.h>

#include <functional>
#include <string>

namespace ckpt::sdk {

namespace detail {
// Set once by the plugin's entry point (CKPT_PLUGIN).
inline const ckpt_host_api*& host_slot() {
  static const ckpt_host_api* host = nullptr;
  return host;
}
inline uint32_t& host_minor_slot() {
  static uint32_t minor = 0;
  return minor;
}
}  // namespace detail

// The host's function table; valid once the plugin has been entered. Only
// the functions of the host's minor (host_abi_minor()) are there.
inline const ckpt_host_api& host() { return *detail::host_slot(); }

// The ABI minor of the host this plugin runs in (abi.h convention 10).
inline uint32_t host_abi_minor() { return detail::host_minor_slot(); }

// Where a handler call runs. Copied out of ckpt_call_context, so background
// work may keep it.
struct Call {
  std::string checkpointable_name;
  std::string directory;  // <checkpoint>/<name>; exists
  int process_index = 0;
  int process_count = 1;
  bool is_primary_host = true;
  unsigned file_mode = 0644;
  std::string options_json = "{}";

  static Call from(const ckpt_call_context& c) {
    Call call;
    call.checkpointable_name =
        c.checkpointable_name ? c.checkpointable_name : "";
    call.directory = c.directory ? c.directory : "";
    call.process_index = c.process_index;
    call.process_count = c.process_count;
    call.is_primary_host = c.is_primary_host != 0;
    call.file_mode = c.file_mode;
    call.options_json = c.options_json ? c.options_json : "{}";
    return call;
  }
};

// Keeps a host value alive while background work reads it. Movable; the
// value is released when the last holder is destroyed.
class RetainedValue {
 public:
  RetainedValue() = default;
  explicit RetainedValue(ckpt_value_ref* ref)
      : ref_(ref ? host().value_retain(ref) : nullptr) {}
  RetainedValue(RetainedValue&& other) noexcept : ref_(other.ref_) {
    other.ref_ = nullptr;
  }
  RetainedValue(const RetainedValue& other)
      : ref_(other.ref_ ? host().value_retain(other.ref_) : nullptr) {}
  RetainedValue& operator=(RetainedValue other) noexcept {
    std::swap(ref_, other.ref_);
    return *this;
  }
  ~RetainedValue() {
    if (ref_) host().value_release(ref_);
  }

 private:
  ckpt_value_ref* ref_ = nullptr;
};

// The background tier of save: runs on the host's pool after the blocking
// tier returned. Empty = nothing left to do.
using SaveWork = std::function<void()>;
// The background tier of load: produces the loaded value.
using LoadWork = std::function<OutValue()>;

class Handler {
 public:
  virtual ~Handler() = default;

  // Can this handler save `value`? Must not throw; should be cheap.
  virtual bool is_handleable(const ckpt_value& value) = 0;
  // Can this handler load into `abstract_value`? DEFER = "only if my
  // typestr is the one recorded in the checkpoint".
  virtual ckpt_answer is_abstract_handleable(
      const ckpt_value& abstract_value) = 0;

  // Blocking tier of save. `value` is valid only during this call: copy what
  // the background work needs, or keep `retained` (which keeps the host's
  // value alive) when the data is immutable.
  virtual SaveWork save(const Call& call, const ckpt_value& value,
                        RetainedValue retained) = 0;

  // Blocking tier of load; `abstract_value` is NULL for "as saved".
  virtual LoadWork load(const Call& call, const ckpt_value* abstract_value,
                        RetainedValue retained) = 0;

  // The checkpointable's metadata as an abstract value; none = no metadata.
  virtual OutValue metadata(const Call& call) {
    (void)call;
    throw Error(CKPT_ERROR_UNIMPLEMENTED, "metadata is not supported");
  }

  // After every process's save of the checkpointable succeeded, on the
  // primary host only, before the commit (ABI 1.4's finalize_save): writes
  // what depends on every process's files into call.directory. A throw
  // fails the save. Never called by a host older than 1.4
  // (host_abi_minor()).
  virtual void finalize_save(const Call& call) { (void)call; }
};

}  // namespace ckpt::sdk

#endif  // CKPT_SDK_HANDLER_H_
