// ckpt._ckpt: the C++ API for ckpt/__init__.py, which gives it Orbax's v1
// shape. Every call converts its Python arguments with the GIL held (a bad
// leaf is an InvalidArgumentError naming its key path), then runs ckpt with
// the GIL released. ckpt's errors become ckpt.errors' classes.
#include <ckpt/checkpoint.h>
#include <ckpt/context.h>
#include <ckpt/errors.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "convert.h"
#include "handlers.h"
#include "remote.h"
#include "training.h"

namespace nb = nanobind;
using nlohmann::json;

namespace ckpt::python {

namespace {

// The class of ckpt.errors for `kind`.
nb::object error_class(ErrorKind kind) {
  return nb::module_::import_("ckpt.errors")
      .attr("kind_class")(error_kind_name(kind));
}

// A Context entered and left from Python. Contexts stack per thread, as
// the core's do; Python cannot promise the order a `with` gives (manual
// __enter__/__exit__, a generator suspended inside one, an object dropped
// on another thread), so the order is checked here: a Context is left
// innermost first, on its own thread. One dropped while still entered and
// not innermost (or on another thread) stays on its thread's stack until
// it is innermost there, and is left then: when the Contexts over it are
// left, or when its thread enters or leaves another. Freeing it earlier
// would leave the thread's stack pointing at freed memory.
class ScopedContext {
 public:
  // `registry`: a ckpt.handlers Registry, or None for the default.
  ScopedContext(const std::string& options_json, nb::handle registry)
      : options_(parse_options(options_json)) {
    options_.checkpointables_options.registry = registry_of(registry);
  }
  ~ScopedContext() {
    if (!context_) return;
    if (innermost()) {
      exit();
    } else {
      entry_->owner = nullptr;
      entry_->orphan = std::move(context_);
    }
  }
  ScopedContext(const ScopedContext&) = delete;
  ScopedContext& operator=(const ScopedContext&) = delete;

  void enter() {
    if (context_) throw InvalidArgumentError("this Context is already entered");
    leave_orphans();
    context_ = std::make_unique<Context>(options_);
    thread_ = std::this_thread::get_id();
    entry_ = std::make_shared<Entry>();
    entry_->owner = this;
    entered().push_back(entry_);
  }
  void exit() {
    if (!context_) return;
    if (thread_ != std::this_thread::get_id()) {
      throw InvalidArgumentError(
          "a Context must be left on the thread that entered it");
    }
    if (!innermost()) {
      throw InvalidArgumentError(
          "a Context must be left after the Contexts entered inside it "
          "(innermost first)");
    }
    leave_orphans();  // entered after this one
    context_.reset();
    entered().pop_back();
    entry_.reset();
    leave_orphans();  // entered before it, dropped since
  }

 private:
  static ContextOptions parse_options(const std::string& text) {
    const json j = parse_json(text, "the Context's options");
    ContextOptions o;
    if (j.contains("handler_options")) o.handler_options = j["handler_options"];
    if (j.contains("fsync")) o.fsync = j["fsync"].get<bool>();
    if (j.contains("file_mode")) o.file_mode = j["file_mode"].get<unsigned>();
    if (j.contains("async_timeout")) {
      o.async_timeout = std::chrono::milliseconds(
          static_cast<int64_t>(j["async_timeout"].get<double>() * 1000.0));
    }
    if (j.contains("plugin_paths")) {
      for (const auto& p : j["plugin_paths"]) {
        o.plugin_paths.emplace_back(p.get<std::string>());
      }
    }
    return o;
  }

  // A place on a thread's stack: its ScopedContext, or (owner null) the
  // Context of one dropped while entered. Touched under the GIL only.
  struct Entry {
    ScopedContext* owner = nullptr;
    std::unique_ptr<Context> orphan;
    // An orphan is left by leave_orphans() on its own thread; one whose
    // thread ended first is never freed (freeing it here, on any thread,
    // would reset this thread's current Context).
    ~Entry() { [[maybe_unused]] Context* never_freed = orphan.release(); }
  };
  // The Contexts this thread has entered, innermost last.
  static std::vector<std::shared_ptr<Entry>>& entered() {
    thread_local std::vector<std::shared_ptr<Entry>> stack;
    return stack;
  }
  // Leaves the dropped Contexts at the top of this thread's stack,
  // innermost first.
  static void leave_orphans() {
    auto& stack = entered();
    while (!stack.empty() && !stack.back()->owner) {
      stack.back()->orphan.reset();
      stack.pop_back();
    }
  }
  // Whether this is the innermost Context of its thread still held.
  bool innermost() const {
    if (thread_ != std::this_thread::get_id()) return false;
    const auto& stack = entered();
    for (auto it = stack.rbegin(); it != stack.rend(); ++it) {
      if ((*it)->owner) return *it == entry_;
    }
    return false;
  }

  ContextOptions options_;
  std::unique_ptr<Context> context_;
  std::thread::id thread_;
  std::shared_ptr<Entry> entry_;
};

class PendingSave {
 public:
  explicit PendingSave(AsyncSave save) : save_(std::move(save)) {}
  void result(std::optional<double> timeout_seconds) const {
    nb::gil_scoped_release release;
    if (timeout_seconds) {
      save_.result(std::chrono::milliseconds(
          static_cast<int64_t>(*timeout_seconds * 1000.0)));
    } else {
      save_.result();
    }
  }
  bool done() const { return save_.done(); }
  std::string path() const { return save_.path().string(); }

 private:
  AsyncSave save_;
};

// Saves `items`; an AsyncSave when `async`, else None once committed.
nb::object save(const std::string& path, nb::dict items, bool overwrite,
                const std::string& custom_metadata_json, bool async) {
  SaveOptions options;
  options.overwrite = overwrite;
  options.custom_metadata = parse_json(custom_metadata_json, "custom_metadata");
  Checkpointables checkpointables = checkpointables_of(items, Use::kSave);
  if (async) {
    AsyncSave s;
    {
      nb::gil_scoped_release release;
      s = save_checkpointables_async(path, checkpointables, options);
    }
    return nb::cast(PendingSave(std::move(s)));
  }
  {
    nb::gil_scoped_release release;
    save_checkpointables(path, checkpointables, options);
  }
  return nb::none();
}

nb::object load(const std::string& path, nb::handle abstract,
                const std::string& name) {
  std::optional<Value> target;
  if (!abstract.is_none())
    target = to_value(abstract, "abstract_tree", Use::kTarget);
  Value loaded;
  {
    nb::gil_scoped_release release;
    loaded = ckpt::load(path, target ? &*target : nullptr, name);
  }
  return to_python(loaded);
}

nb::dict load_checkpointables(const std::string& path, nb::handle abstracts) {
  Checkpointables wanted;
  if (!abstracts.is_none())
    wanted = checkpointables_of(nb::cast<nb::dict>(abstracts), Use::kTarget);
  Checkpointables loaded;
  {
    nb::gil_scoped_release release;
    loaded = ckpt::load_checkpointables(path, wanted);
  }
  nb::dict out;
  for (const auto& [name, value] : loaded)
    out[nb::str(name.c_str())] = to_python(value);
  return out;
}

nb::tuple metadata(const std::string& path, const std::string& name) {
  Metadata m;
  {
    nb::gil_scoped_release release;
    m = ckpt::metadata(path, name);
  }
  return nb::make_tuple(to_python(m.metadata), info_json(m.checkpoint), m.name);
}

nb::tuple checkpointables_metadata(const std::string& path) {
  CheckpointablesMetadata m;
  {
    nb::gil_scoped_release release;
    m = ckpt::checkpointables_metadata(path);
  }
  nb::dict items;
  for (const auto& [name, value] : m.metadata)
    items[nb::str(name.c_str())] = to_python(value);
  return nb::make_tuple(items, info_json(m.checkpoint));
}

}  // namespace

}  // namespace ckpt::python

NB_MODULE(_ckpt, m) {
  using namespace ckpt::python;
  m.doc() = "ckpt's C++ API (use the ckpt package, not this module)";
  init_numpy();
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const ckpt::Error& e) {
      PyErr_SetString(error_class(e.kind()).ptr(), e.what());
    }
  });
  nb::class_<ScopedContext>(m, "Context")
      .def(nb::init<const std::string&, nb::handle>(), nb::arg("options"),
           nb::arg("registry").none())
      .def("enter", &ScopedContext::enter)
      .def("exit", &ScopedContext::exit);
  nb::class_<PendingSave>(m, "AsyncSave")
      .def("result", &PendingSave::result, nb::arg("timeout") = nb::none())
      .def("done", &PendingSave::done)
      .def_prop_ro("path", &PendingSave::path);
  m.def("save", &save, nb::arg("path"), nb::arg("items"), nb::arg("overwrite"),
        nb::arg("custom_metadata_json"), nb::arg("is_async"));
  m.def("load", &load, nb::arg("path"), nb::arg("abstract").none(),
        nb::arg("name"));
  m.def("load_checkpointables", &load_checkpointables, nb::arg("path"),
        nb::arg("abstracts").none());
  m.def("metadata", &metadata, nb::arg("path"), nb::arg("name"));
  m.def("checkpointables_metadata", &checkpointables_metadata, nb::arg("path"));
  m.def("wait_for_pending_saves", [] {
    nb::gil_scoped_release release;
    ckpt::wait_for_pending_saves();
  });
  m.attr("AUTO") = ckpt::kAutoName;
  bind_training(m);
  bind_remote(m);
  bind_handlers(m);
}
