#include "handlers.h"

#include <ckpt/abi.h>
#include <ckpt/errors.h>
#include <ckpt/plugins.h>

#include <future>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "convert.h"

namespace nb = nanobind;
using nlohmann::json;

namespace ckpt::python {

namespace {

// ckpt's error for the Python exception `e` raised by handler `what`: a
// ckpt.errors class keeps its kind, a builtin the matching one
// (FileNotFoundError: NotFoundError, ValueError: InvalidArgumentError,
// ...), anything else is a PluginError. REQUIRES: the GIL.
[[noreturn]] void rethrow_as_ckpt(const nb::python_error& e,
                                  const std::string& what) {
  static const std::vector<std::pair<const char*, ErrorKind>> builtins = {
      {"FileNotFoundError", ErrorKind::kNotFound},
      {"FileExistsError", ErrorKind::kAlreadyExists},
      {"PermissionError", ErrorKind::kPermissionDenied},
      {"TimeoutError", ErrorKind::kTimeout},
      {"NotImplementedError", ErrorKind::kUnimplemented},
      {"ValueError", ErrorKind::kInvalidArgument},
      {"TypeError", ErrorKind::kInvalidArgument},
  };
  const std::string message = what + ": " + e.what();
  nb::object errors = nb::module_::import_("ckpt.errors");
  for (int k = static_cast<int>(ErrorKind::kIO); k >= 0; --k) {
    const auto kind = static_cast<ErrorKind>(k);
    if (e.matches(errors.attr("kind_class")(error_kind_name(kind)))) {
      throw_error(kind, message);
    }
  }
  nb::object b = nb::module_::import_("builtins");
  for (const auto& [name, kind] : builtins) {
    if (e.matches(b.attr(name))) throw_error(kind, message);
  }
  throw PluginError(message);
}

// A class with Orbax's CheckpointableHandler methods, as a handler; the
// calls go through ckpt/handlers.py's _save_blocking, _load_blocking and
// _metadata, which run coroutines and tell the tiers apart.
class PyHandler final : public Handler {
 public:
  PyHandler(nb::object handler, HandlerInfo info)
      : handler_(shared_object(std::move(handler))), info_(std::move(info)) {}

  const HandlerInfo& info() const override { return info_; }

  bool is_handleable(const Value& value) const override {
    nb::gil_scoped_acquire gil;
    try {
      return nb::cast<bool>(handler_->attr("is_handleable")(to_python(value)));
    } catch (const std::exception&) {
      return false;  // as a plugin's: an error answers no
    }
  }

  Answer is_abstract_handleable(const Value& abstract) const override {
    nb::gil_scoped_acquire gil;
    try {
      if (!nb::hasattr(*handler_, "is_abstract_handleable")) {
        return Answer::kNo;
      }
      nb::object answer =
          handler_->attr("is_abstract_handleable")(to_python(abstract));
      if (answer.is_none()) return Answer::kDefer;
      return nb::cast<bool>(answer) ? Answer::kYes : Answer::kNo;
    } catch (const std::exception&) {
      return Answer::kNo;
    }
  }

  std::future<void> save(const CallContext& call,
                         const Value& value) const override {
    std::shared_ptr<nb::object> background;
    {
      nb::gil_scoped_acquire gil;
      try {
        nb::object work = helpers().attr("_save_blocking")(
            *handler_, call.directory.string(), to_python(value));
        if (!work.is_none()) background = shared_object(std::move(work));
      } catch (const nb::python_error& e) {
        rethrow_as_ckpt(e, what());
      }
    }
    if (!background) {
      std::promise<void> done;
      done.set_value();
      return done.get_future();
    }
    return run_in_background([background, what = what()] {
      nb::gil_scoped_acquire gil;
      try {
        (*background)();
      } catch (const nb::python_error& e) {
        rethrow_as_ckpt(e, what);
      }
    });
  }

  std::future<Value> load(const CallContext& call,
                          const Value* abstract) const override {
    std::shared_ptr<nb::object> background;
    {
      nb::gil_scoped_acquire gil;
      try {
        background = shared_object(helpers().attr("_load_blocking")(
            *handler_, call.directory.string(),
            abstract ? to_python(*abstract) : nb::none()));
      } catch (const nb::python_error& e) {
        rethrow_as_ckpt(e, what());
      }
    }
    auto promise = std::make_shared<std::promise<Value>>();
    std::future<Value> future = promise->get_future();
    std::future<void> started = run_in_background(
        [background, promise, what = what(), name = call.checkpointable_name] {
          try {
            nb::gil_scoped_acquire gil;
            try {
              promise->set_value(
                  checkpointable_value((*background)(), name, Use::kSave));
            } catch (const nb::python_error& e) {
              rethrow_as_ckpt(e, what);
            }
          } catch (...) {
            promise->set_exception(std::current_exception());
          }
        });
    (void)started;
    return future;
  }

  std::optional<Value> metadata(const CallContext& call) const override {
    nb::gil_scoped_acquire gil;
    if (!nb::hasattr(*handler_, "metadata")) {
      throw UnimplementedError(what() + " has no metadata");
    }
    try {
      nb::object m =
          helpers().attr("_metadata")(*handler_, call.directory.string());
      if (m.is_none()) return std::nullopt;
      return checkpointable_value(m, call.checkpointable_name, Use::kSave);
    } catch (const nb::python_error& e) {
      rethrow_as_ckpt(e, what());
    }
  }

 private:
  static nb::object helpers() { return nb::module_::import_("ckpt.handlers"); }
  std::string what() const { return "Python handler " + info_.typestr; }

  std::shared_ptr<nb::object> handler_;
  HandlerInfo info_;
};

PyHandlerRef python_handler(nb::object handler, const std::string& typestr,
                            const std::vector<std::string>& secondary,
                            const std::string& description) {
  HandlerInfo info;
  info.typestr = typestr;
  info.secondary_typestrs = secondary;
  info.description = description;
  info.origin = "python";
  info.plugin_name = "python";
  info.abi_major = CKPT_ABI_MAJOR;
  info.abi_minor = CKPT_ABI_MINOR;
  return {std::make_shared<PyHandler>(std::move(handler), std::move(info))};
}

std::string handler_info_json(const HandlerInfo& i) {
  return json{{"typestr", i.typestr},
              {"secondary_typestrs", i.secondary_typestrs},
              {"description", i.description},
              {"origin", i.origin},
              {"plugin", i.plugin_name}}
      .dump();
}

}  // namespace

RegistryPtr registry_of(nb::handle registry) {
  if (registry.is_none()) return nullptr;
  return nb::cast<PyRegistry&>(registry).registry;
}

void bind_handlers(nb::module_& m) {
  nb::class_<PyHandlerRef>(m, "Handler")
      .def_prop_ro("typestr",
                   [](const PyHandlerRef& h) { return h.handler->typestr(); })
      .def_prop_ro("info", [](const PyHandlerRef& h) {
        return handler_info_json(h.handler->info());
      });
  nb::class_<PyRegistry>(m, "Registry")
      .def("__init__",
           [](PyRegistry* self, bool include_global) {
             std::shared_ptr<Registry> r;
             {
               nb::gil_scoped_release release;
               r = local_registry(nullptr, include_global);
             }
             new (self) PyRegistry{std::move(r)};
           })
      .def(
          "add",
          [](PyRegistry& r, const PyHandlerRef& h,
             std::optional<std::string> name,
             std::optional<std::vector<std::string>> secondary) {
            r.registry->add(h.handler, std::move(name), std::move(secondary));
          },
          nb::arg("handler"), nb::arg("name").none(),
          nb::arg("secondary_typestrs").none())
      .def("entries", [](const PyRegistry& r) {
        std::vector<std::string> out;
        for (const RegistryEntry& e : r.registry->get_all_entries()) {
          out.push_back(
              json{{"typestr", e.handler->typestr()},
                   {"name", e.checkpointable_name ? json(*e.checkpointable_name)
                                                  : json(nullptr)}}
                  .dump());
        }
        return out;
      });
  m.def("python_handler", &python_handler);
  m.def(
      "make_handler",
      [](const std::string& typestr, const std::string& config) {
        nb::gil_scoped_release release;
        return PyHandlerRef{
            make_handler(typestr, parse_json(config, "the configuration"))};
      },
      nb::arg("typestr"), nb::arg("config_json"));
  m.def(
      "register_handler",
      [](const PyHandlerRef& h, std::optional<std::string> name,
         std::optional<std::vector<std::string>> secondary) {
        register_handler(h.handler, std::move(name), std::move(secondary));
      },
      nb::arg("handler"), nb::arg("name").none(),
      nb::arg("secondary_typestrs").none());
  m.def("load_plugin", [](const std::string& path) {
    PluginInfo info;
    {
      nb::gil_scoped_release release;
      info = load_plugin(path);
    }
    return info.name;
  });
  m.def("handler_types", [] {
    std::vector<std::string> out;
    for (const HandlerInfo& i : handler_types()) {
      out.push_back(handler_info_json(i));
    }
    return out;
  });
}

}  // namespace ckpt::python
