#include "training.h"

#include <ckpt/checkpointer.h>
#include <ckpt/errors.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <vector>

#include "convert.h"
#include "remote.h"

namespace nb = nanobind;
using nlohmann::json;

namespace ckpt::python {

namespace {

// A save decision policy from ckpt/training.py's JSON:
// {"policy": NAME, ...arguments}.
SaveDecisionPolicyRef decision_policy(const json& j) {
  const std::string name = j.value("policy", "");
  if (name == "ContinuousCheckpointingPolicy") {
    std::optional<double> interval;
    if (j.contains("minimum_interval_secs") &&
        !j["minimum_interval_secs"].is_null()) {
      interval = j["minimum_interval_secs"].get<double>();
    }
    return ContinuousCheckpointingPolicy(interval);
  }
  if (name == "FixedIntervalPolicy") {
    return FixedIntervalPolicy(j.at("interval").get<int64_t>());
  }
  if (name == "SpecificStepsPolicy") {
    return SpecificStepsPolicy(j.at("steps").get<std::vector<int64_t>>());
  }
  if (name == "InitialSavePolicy") return InitialSavePolicy();
  if (name == "PreemptionCheckpointingPolicy") {
    return PreemptionCheckpointingPolicy();
  }
  if (name == "AnySavePolicy") {
    std::vector<SaveDecisionPolicyRef> policies;
    for (const json& p : j.at("policies"))
      policies.push_back(decision_policy(p));
    return AnySavePolicy(std::move(policies));
  }
  throw InvalidArgumentError("unknown save decision policy " + j.dump());
}

// A Python function the Checkpointer's policy calls: released under the
// GIL whichever thread drops it, and cleared by the garbage collector when
// it is part of a cycle (the function's globals holding the Checkpointer).
struct FunctionRef {
  nb::object function;
};
using PyFunction = std::shared_ptr<FunctionRef>;

PyFunction hold(nb::handle function) {
  return PyFunction(new FunctionRef{nb::borrow(function)}, [](FunctionRef* f) {
    nb::gil_scoped_acquire gil;
    delete f;
  });
}

// BestN's metric as a Python function of the step's metrics (a dict): a
// step whose function raises, or returns None or no number, counts as one
// without metrics (BestN catches what this throws).
BestN::MetricFn python_metric(PyFunction function) {
  return [function](const json& metrics) -> double {
    nb::gil_scoped_acquire gil;
    try {
      if (!function->function.is_valid()) throw std::runtime_error("gone");
      const nb::object value = function->function(
          nb::module_::import_("json").attr("loads")(metrics.dump()));
      if (value.is_none()) throw std::runtime_error("no metric");
      return nb::cast<double>(value);
    } catch (const nb::python_error& e) {
      throw std::runtime_error(e.what());  // dropped here, under the GIL
    }
  };
}

// A preservation policy from ckpt/training's JSON, as the core reads it,
// but for a BestN of a Python function ("python_metric_fn": its index in
// `functions`), also inside an AnyPreservationPolicy.
PreservationPolicyRef preservation_policy(
    const json& j, const std::vector<PyFunction>& functions) {
  const std::string name = j.value("policy", "");
  if (name == "BestN" && j.contains("python_metric_fn")) {
    const size_t index = j["python_metric_fn"].get<size_t>();
    if (index >= functions.size()) {
      throw InvalidArgumentError("BestN: no metric function " +
                                 std::to_string(index));
    }
    std::optional<size_t> n;
    if (j.contains("n") && !j["n"].is_null()) n = j["n"].get<size_t>();
    return BestN(python_metric(functions[index]), j.value("reverse", false), n,
                 j.value("keep_checkpoints_without_metrics", true));
  }
  if (name == "AnyPreservationPolicy") {
    std::vector<PreservationPolicyRef> policies;
    for (const json& p : j.at("policies")) {
      policies.push_back(preservation_policy(p, functions));
    }
    return AnyPreservationPolicy(std::move(policies));
  }
  return preservation_policy_from_json(j);
}

CheckpointerOptions checkpointer_options(
    const std::string& text, const std::vector<PyFunction>& functions) {
  const json j = parse_json(text, "the Checkpointer's options");
  CheckpointerOptions o;
  try {
    if (j.contains("save_decision_policy")) {
      o.save_decision_policy = decision_policy(j["save_decision_policy"]);
    }
    if (j.contains("preservation_policy")) {
      o.preservation_policy =
          preservation_policy(j["preservation_policy"], functions);
    }
    if (j.contains("custom_metadata")) o.custom_metadata = j["custom_metadata"];
    if (j.contains("step_prefix")) {
      o.step_name_format.prefix = j["step_prefix"].get<std::string>();
    }
    if (j.contains("handle_preemption_signals")) {
      o.handle_preemption_signals = j["handle_preemption_signals"].get<bool>();
    }
    if (j.contains("remote")) {
      const json& r = j["remote"];
      o.remote.store = store_at(r.at("url").get<std::string>());
      if (r.contains("keep_local") && !r["keep_local"].is_null()) {
        o.remote.keep_local = r["keep_local"].get<int>();
      }
      o.remote.max_pending_uploads =
          r.value("max_pending_uploads", o.remote.max_pending_uploads);
    }
  } catch (const json::exception& e) {
    throw InvalidArgumentError(std::string("a Checkpointer option: ") +
                               e.what());
  }
  return o;
}

// A step as JSON text for ckpt/training.py.
std::string step_json(const CheckpointStep& s) {
  return json{
      {"step", s.step},
      {"path", s.path.string()},
      {"time",
       std::chrono::duration<double>(s.time.time_since_epoch()).count()},
      {"metrics", s.metrics},
      {"local", s.local},
      {"remote", s.remote}}
      .dump();
}

class PyCheckpointer {
 public:
  PyCheckpointer(const std::string& directory, const std::string& options,
                 nb::list metric_functions) {
    for (nb::handle f : metric_functions) functions_.push_back(hold(f));
    CheckpointerOptions o = checkpointer_options(options, functions_);
    nb::gil_scoped_release release;
    checkpointer_ = std::make_unique<Checkpointer>(directory, std::move(o));
  }
  // Dropped without close(): the saves in flight finish first, and may
  // need the GIL (a Python handler, a BestN's function).
  ~PyCheckpointer() {
    nb::gil_scoped_release release;
    checkpointer_.reset();
  }
  PyCheckpointer(const PyCheckpointer&) = delete;
  PyCheckpointer& operator=(const PyCheckpointer&) = delete;

  bool save(int64_t step, nb::dict items, const std::string& options_json,
            bool async) {
    const json j = parse_json(options_json, "the step's options");
    StepSaveOptions o;
    if (j.contains("metrics") && !j["metrics"].is_null()) {
      o.metrics = j["metrics"];
    }
    o.force = j.value("force", false);
    o.overwrite = j.value("overwrite", false);
    if (j.contains("custom_metadata")) o.custom_metadata = j["custom_metadata"];
    Checkpointables checkpointables = checkpointables_of(items, Use::kSave);
    Checkpointer& c = get();
    nb::gil_scoped_release release;
    const bool saved =
        async ? c.save_checkpointables_async(step, checkpointables, o)
              : c.save_checkpointables(step, checkpointables, o);
    return saved;
  }

  nb::dict load(std::optional<int64_t> step, nb::handle abstracts) {
    Checkpointables wanted;
    if (!abstracts.is_none()) {
      wanted = checkpointables_of(nb::cast<nb::dict>(abstracts), Use::kTarget);
    }
    Checkpointables loaded;
    {
      Checkpointer& c = get();
      nb::gil_scoped_release release;
      loaded = c.load_checkpointables(step, wanted);
    }
    return checkpointables_python(loaded);
  }

  nb::tuple metadata(std::optional<int64_t> step) {
    CheckpointablesMetadata m;
    {
      Checkpointer& c = get();
      nb::gil_scoped_release release;
      m = c.checkpointables_metadata(step);
    }
    return nb::make_tuple(checkpointables_python(m.metadata),
                          info_json(m.checkpoint));
  }

  nb::list checkpoints() {
    nb::list out;
    for (const CheckpointStep& s : get().checkpoints()) {
      out.append(nb::str(step_json(s).c_str()));
    }
    return out;
  }

  bool should_save(int64_t step) {
    Checkpointer& c = get();
    nb::gil_scoped_release release;
    return c.should_save(step);
  }

  std::string root_metadata() {
    return get().root_metadata().custom_metadata.dump();
  }

  void wait() {
    Checkpointer& c = get();
    nb::gil_scoped_release release;
    c.wait();
  }

  void wait_for_uploads() {
    Checkpointer& c = get();
    nb::gil_scoped_release release;
    c.wait_for_uploads();
  }

  void close() {
    nb::gil_scoped_release release;
    checkpointer_->close();
  }

  void reload() {
    Checkpointer& c = get();
    nb::gil_scoped_release release;
    c.reload();
  }

  bool is_saving_in_progress() { return get().is_saving_in_progress(); }
  bool reached_preemption() { return get().reached_preemption(); }
  bool may_exit() { return get().may_exit(); }

  // The garbage collector's view (tp_traverse, tp_clear): the functions
  // held. Cleared only once the save in flight and the uploads are done,
  // so that no policy runs without its metric.
  int traverse(visitproc visit, void* arg) const {
    for (const PyFunction& f : functions_) {
      Py_VISIT(f->function.ptr());
    }
    return 0;
  }
  void clear() {
    try {
      close();
    } catch (const std::exception&) {
      // Collected without close(): what failed was the caller's to see.
    }
    for (const PyFunction& f : functions_) f->function.reset();
  }

 private:
  Checkpointer& get() { return *checkpointer_; }

  std::vector<PyFunction> functions_;
  std::unique_ptr<Checkpointer> checkpointer_;
};

int checkpointer_traverse(PyObject* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  if (!nb::inst_ready(self)) return 0;
  return nb::inst_ptr<PyCheckpointer>(self)->traverse(visit, arg);
}

int checkpointer_clear(PyObject* self) {
  if (nb::inst_ready(self)) nb::inst_ptr<PyCheckpointer>(self)->clear();
  return 0;
}

PyType_Slot checkpointer_slots[] = {
    {Py_tp_traverse, reinterpret_cast<void*>(checkpointer_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(checkpointer_clear)},
    {0, nullptr}};

}  // namespace

void bind_training(nb::module_& m) {
  nb::class_<PyCheckpointer>(m, "Checkpointer",
                             nb::type_slots(checkpointer_slots))
      .def(nb::init<const std::string&, const std::string&, nb::list>())
      .def("save", &PyCheckpointer::save)
      .def("load", &PyCheckpointer::load, nb::arg("step").none(),
           nb::arg("abstracts").none())
      .def("metadata", &PyCheckpointer::metadata, nb::arg("step").none())
      .def("checkpoints", &PyCheckpointer::checkpoints)
      .def("should_save", &PyCheckpointer::should_save)
      .def("root_metadata", &PyCheckpointer::root_metadata)
      .def("wait", &PyCheckpointer::wait)
      .def("wait_for_uploads", &PyCheckpointer::wait_for_uploads)
      .def("close", &PyCheckpointer::close)
      .def("reload", &PyCheckpointer::reload)
      .def("is_saving_in_progress", &PyCheckpointer::is_saving_in_progress)
      .def("reached_preemption", &PyCheckpointer::reached_preemption)
      .def("may_exit", &PyCheckpointer::may_exit);
  m.def("request_preemption", [] { request_preemption(); });
}

}  // namespace ckpt::python
