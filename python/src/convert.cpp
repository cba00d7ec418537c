#include "convert.h"

#include <ckpt/errors.h>
#include <nanobind/ndarray.h>

#include <climits>
#include <memory>
#include <optional>
#include <vector>

// NumPy's C API, in this file only (init_numpy imports it), from the
// NumPy the package is built against: quoted, and found through -iquote
// (meson.build), because a Debian python3-numpy's older headers sit in
// the Python include folder, which <> would search first.
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include "numpy/arrayobject.h"

namespace nb = nanobind;
using nlohmann::json;

namespace ckpt::python {

namespace {

using Code = nb::dlpack::dtype_code;

// ckpt's integer dtype of `bytes` bytes; nullopt for another size.
std::optional<DType> integer_dtype(bool is_signed, int bytes) {
  switch (bytes) {
    case 1:
      return is_signed ? DType::kInt8 : DType::kUInt8;
    case 2:
      return is_signed ? DType::kInt16 : DType::kUInt16;
    case 4:
      return is_signed ? DType::kInt32 : DType::kUInt32;
    case 8:
      return is_signed ? DType::kInt64 : DType::kUInt64;
  }
  return std::nullopt;
}

// ckpt's dtype of a DLPack dtype; nullopt when ckpt has none.
std::optional<DType> dtype_of(nb::dlpack::dtype t) {
  if (t.lanes != 1) return std::nullopt;
  const auto code = static_cast<Code>(t.code);
  switch (code) {
    case Code::Bool:
      return t.bits == 8 ? std::optional(DType::kBool) : std::nullopt;
    case Code::Int:
    case Code::UInt:
      return integer_dtype(code == Code::Int, t.bits / 8);
    case Code::Float:
      switch (t.bits) {
        case 16:
          return DType::kFloat16;
        case 32:
          return DType::kFloat32;
        case 64:
          return DType::kFloat64;
      }
      return std::nullopt;
    case Code::Bfloat:
      return t.bits == 16 ? std::optional(DType::kBFloat16) : std::nullopt;
    case Code::Complex:
      if (t.bits == 64) return DType::kComplex64;
      if (t.bits == 128) return DType::kComplex128;
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

std::string shown(nb::handle h) {
  try {
    std::string text = nb::repr(h).c_str();
    if (text.size() > 80) text = text.substr(0, 77) + "...";
    return text;
  } catch (const nb::python_error&) {
    return "<" + std::string(nb::type_name(h.type()).c_str()) + ">";
  }
}

[[noreturn]] void refuse(const std::string& where, const std::string& why) {
  throw InvalidArgumentError(where + ": " + why);
}

// Drops a reference to a Python object from any thread: takes the GIL,
// and leaks the reference once the interpreter is gone (process exit).
template <class T>
std::shared_ptr<T> python_owner(T object) {
  return std::shared_ptr<T>(new T(std::move(object)), [](T* p) {
    if (!Py_IsInitialized()) return;
    nb::gil_scoped_acquire gil;
    delete p;
  });
}

constexpr const char* kPythonObject = "python";

bool is_jax_array(nb::handle h) {
  const nb::handle type = h.type();
  if (!nb::hasattr(type, "__module__")) return false;
  const std::string module = nb::str(type.attr("__module__")).c_str();
  return module.rfind("jax", 0) == 0;
}

// A NumPy array of ml_dtypes.bfloat16 (which neither the buffer protocol
// nor DLPack names): its bits viewed as uint16.
std::optional<nb::object> bfloat16_bits(nb::handle h) {
  nb::object numpy = nb::module_::import_("numpy");
  if (!nb::isinstance(h, numpy.attr("ndarray"))) return std::nullopt;
  nb::object dtype = h.attr("dtype");
  if (std::string(nb::str(dtype.attr("name")).c_str()) != "bfloat16") {
    return std::nullopt;
  }
  return h.attr("view")(numpy.attr("uint16"));
}

Value array_value(nb::ndarray<> array, std::optional<DType> dtype,
                  bool immutable, const std::string& where) {
  if (array.device_type() != nb::device::cpu::value) {
    refuse(where,
           "an array on a device that is not the CPU: move it to the "
           "CPU first");
  }
  if (!dtype) dtype = dtype_of(array.dtype());
  if (!dtype) {
    const auto t = array.dtype();
    refuse(where, "an array of a dtype ckpt does not store (DLPack code " +
                      std::to_string(t.code) + ", " + std::to_string(t.bits) +
                      " bits); ckpt stores bool, int8-64, uint8-64, "
                      "float16/32/64, bfloat16, complex64/128");
  }
  Shape shape;
  std::vector<int64_t> strides;
  bool negative = false;
  for (size_t d = 0; d < array.ndim(); ++d) {
    shape.push_back(static_cast<int64_t>(array.shape(d)));
    strides.push_back(array.stride(d));
    negative = negative || array.stride(d) < 0;
  }
  if (negative) {
    refuse(where,
           "an array with negative strides (a reversed view): pass "
           "numpy.ascontiguousarray of it");
  }
  void* data = array.data();
  return Value(Array::share(*dtype, std::move(shape), data,
                            python_owner(std::move(array)), immutable,
                            std::move(strides)));
}

Value spec_value(nb::handle h, const std::string& where) {
  nb::object shape = h.attr("shape");
  Shape dims;
  for (nb::handle d : shape) dims.push_back(nb::cast<int64_t>(d));
  nb::object dtype = h.attr("dtype");
  std::optional<DType> d;
  if (!dtype.is_none()) {
    // A torch.dtype prints as "torch.float32"; NumPy names the others.
    const std::string torch_name = nb::str(dtype).c_str();
    nb::object name =
        torch_name.rfind("torch.", 0) == 0
            ? nb::str(torch_name.substr(6).c_str())
            : nb::module_::import_("numpy").attr("dtype")(dtype).attr("name");
    try {
      d = dtype_from_name(nb::str(name).c_str());
    } catch (const Error&) {
      refuse(where, "an abstract array of dtype " + shown(name) +
                        ", which ckpt does not store");
    }
  }
  return Value(ArraySpec{d, std::move(dims)});
}

bool looks_like_spec(nb::handle h) {
  return nb::hasattr(h, "shape") && nb::hasattr(h, "dtype") &&
         !nb::hasattr(h, "__dlpack__") && !nb::hasattr(h, "__array__") &&
         !nb::hasattr(h, "__array_interface__");
}

// A scalar's type, as metadata gives it (bool, int, float, str): load
// that scalar.
std::optional<Value> scalar_type_spec(PyObject* p) {
  if (!PyType_Check(p)) return std::nullopt;
  if (p == reinterpret_cast<PyObject*>(&PyBool_Type)) {
    return Value::scalar_spec(Value::Kind::kBool);
  }
  if (p == reinterpret_cast<PyObject*>(&PyLong_Type)) {
    return Value::scalar_spec(Value::Kind::kInt);
  }
  if (p == reinterpret_cast<PyObject*>(&PyFloat_Type)) {
    return Value::scalar_spec(Value::Kind::kDouble);
  }
  if (p == reinterpret_cast<PyObject*>(&PyUnicode_Type)) {
    return Value::scalar_spec(Value::Kind::kString);
  }
  return std::nullopt;
}

// ckpt's dtype of a NumPy array of a built-in dtype in native byte order;
// nullopt for any other (bfloat16 and other user dtypes, records,
// strings, big-endian).
std::optional<DType> numpy_dtype(PyArrayObject* a) {
  if (!PyArray_ISNOTSWAPPED(a)) return std::nullopt;
  const int size = static_cast<int>(PyArray_ITEMSIZE(a));
  switch (PyArray_TYPE(a)) {
    case NPY_BOOL:
      return DType::kBool;
    case NPY_BYTE:
    case NPY_SHORT:
    case NPY_INT:
    case NPY_LONG:
    case NPY_LONGLONG:
      return integer_dtype(true, size);
    case NPY_UBYTE:
    case NPY_USHORT:
    case NPY_UINT:
    case NPY_ULONG:
    case NPY_ULONGLONG:
      return integer_dtype(false, size);
    case NPY_HALF:
      return DType::kFloat16;
    case NPY_FLOAT:
      return DType::kFloat32;
    case NPY_DOUBLE:
      return DType::kFloat64;
    case NPY_CFLOAT:
      return DType::kComplex64;
    case NPY_CDOUBLE:
      return DType::kComplex128;
    default:
      return std::nullopt;
  }
}

// Whether a NumPy array of an abstract tree is read-only, so that a load
// must not fill it (marked immutable). An array to save is never marked:
// a read-only view may still change through its base, so an async save
// snapshots it.
bool read_only_target(PyArrayObject* a, Use use) {
  return use == Use::kTarget && !PyArray_ISWRITEABLE(a);
}

// A C-contiguous NumPy array of a built-in dtype: the common leaf, taken
// through NumPy's C API (no DLPack capsule, no buffer export, no Python
// call, no strides) and never refused, so its key path is not needed.
std::optional<Value> contiguous_numpy(PyObject* p, Use use) {
  if (!PyArray_CheckExact(p)) return std::nullopt;
  auto* a = reinterpret_cast<PyArrayObject*>(p);
  if (!PyArray_IS_C_CONTIGUOUS(a)) return std::nullopt;
  const std::optional<DType> dtype = numpy_dtype(a);
  if (!dtype) return std::nullopt;
  Shape shape(PyArray_DIMS(a), PyArray_DIMS(a) + PyArray_NDIM(a));
  // The array object keeps its memory; the Arrays keep the array.
  return Value(Array::share(*dtype, std::move(shape), PyArray_DATA(a),
                            python_owner(nb::borrow<nb::object>(p)),
                            read_only_target(a, use)));
}

// Any other NumPy array of a built-in dtype (a strided view); nullopt
// when `h` is no ndarray or its dtype is not a built-in one (bfloat16:
// the other ways).
std::optional<Value> numpy_array(nb::handle h, const std::string& where,
                                 Use use) {
  if (std::optional<Value> array = contiguous_numpy(h.ptr(), use)) {
    return array;
  }
  if (!PyArray_CheckExact(h.ptr())) return std::nullopt;
  auto* a = reinterpret_cast<PyArrayObject*>(h.ptr());
  const std::optional<DType> dtype = numpy_dtype(a);
  if (!dtype) return std::nullopt;
  const npy_intp item = PyArray_ITEMSIZE(a);
  Shape shape(PyArray_DIMS(a), PyArray_DIMS(a) + PyArray_NDIM(a));
  std::vector<int64_t> strides;
  strides.reserve(shape.size());
  for (int d = 0; d < PyArray_NDIM(a); ++d) {
    const npy_intp stride = PyArray_STRIDES(a)[d];
    if (stride < 0 || stride % item != 0) {
      refuse(where,
             "an array with negative or uneven strides (a reversed "
             "view): pass numpy.ascontiguousarray of it");
    }
    strides.push_back(stride / item);
  }
  return Value(Array::share(*dtype, std::move(shape), PyArray_DATA(a),
                            python_owner(nb::borrow<nb::object>(h)),
                            read_only_target(a, use), std::move(strides)));
}

// A jax.Array spread over several devices of this process, as a
// ShardedArray of its addressable shards (each on one device, through
// DLPack: no copy); nullopt for anything else.
std::optional<Value> sharded_jax_array(nb::handle h, const std::string& where,
                                       Use use) {
  if (!is_jax_array(h) || !nb::hasattr(h, "addressable_shards")) {
    return std::nullopt;
  }
  nb::object shards = h.attr("addressable_shards");
  if (nb::len(shards) <= 1) return std::nullopt;
  if (nb::cast<bool>(h.attr("sharding").attr("is_fully_replicated"))) {
    // Every device holds it all: one copy is the array.
    return to_value(shards[0].attr("data"), where, use);
  }
  if (!nb::cast<bool>(h.attr("is_fully_addressable"))) {
    refuse(where,
           "a jax.Array with shards on other processes: save it "
           "from C++ with a multi-process Context (Python's ckpt "
           "saves from one process)");
  }
  ShardedArray out;
  for (nb::handle d : h.attr("shape")) {
    out.global_shape.push_back(nb::cast<int64_t>(d));
  }
  size_t k = 0;
  for (nb::handle shard : shards) {
    const std::string at = where + " (shard " + std::to_string(k++) + ")";
    Value piece = to_value(shard.attr("data"), at, use);
    if (piece.kind() != Value::Kind::kArray) refuse(at, "not an array");
    Shape offset;
    for (nb::handle slice : shard.attr("index")) {
      nb::object start = slice.attr("start");
      offset.push_back(start.is_none() ? 0 : nb::cast<int64_t>(start));
    }
    out.dtype = piece.as_array().dtype();
    out.shards.push_back({std::move(offset), piece.as_array()});
  }
  return Value(std::move(out));
}

// An array (or NumPy scalar) as a Value; nullopt when `h` is none.
std::optional<Value> array_like(nb::handle h, const std::string& where,
                                Use use) {
  if (std::optional<Value> array = numpy_array(h, where, use)) return array;
  if (std::optional<nb::object> bits = bfloat16_bits(h)) {
    nb::ndarray<> array;
    if (nb::try_cast(*bits, array, false)) {
      return array_value(std::move(array), DType::kBFloat16, false, where);
    }
  }
  if (std::optional<Value> sharded = sharded_jax_array(h, where, use)) {
    return sharded;
  }
  nb::ndarray<> array;
  if (nb::try_cast(h, array, false)) {
    return array_value(std::move(array), std::nullopt, is_jax_array(h), where);
  }
  nb::object numpy = nb::module_::import_("numpy");
  if (nb::isinstance(h, numpy.attr("generic"))) {
    // A NumPy scalar (np.float32(1), np.complex128(...)): as the 0-d
    // array it is, which DLPack speaks for every dtype.
    return to_value(numpy.attr("asarray")(h), where, use);
  }
  return std::nullopt;
}

// NumPy's descriptor of `dtype` (a new reference): bfloat16 is
// ml_dtypes'.
PyArray_Descr* descr_of(DType dtype) {
  if (dtype == DType::kBFloat16) {
    static PyObject* bfloat16 =
        nb::module_::import_("numpy")
            .attr("dtype")(nb::module_::import_("ml_dtypes").attr("bfloat16"))
            .release()
            .ptr();
    Py_INCREF(bfloat16);
    return reinterpret_cast<PyArray_Descr*>(bfloat16);
  }
  int type = NPY_UINT8;
  switch (dtype) {
    case DType::kBool:
      type = NPY_BOOL;
      break;
    case DType::kInt8:
      type = NPY_INT8;
      break;
    case DType::kInt16:
      type = NPY_INT16;
      break;
    case DType::kInt32:
      type = NPY_INT32;
      break;
    case DType::kInt64:
      type = NPY_INT64;
      break;
    case DType::kUInt8:
      type = NPY_UINT8;
      break;
    case DType::kUInt16:
      type = NPY_UINT16;
      break;
    case DType::kUInt32:
      type = NPY_UINT32;
      break;
    case DType::kUInt64:
      type = NPY_UINT64;
      break;
    case DType::kFloat16:
      type = NPY_FLOAT16;
      break;
    case DType::kFloat32:
      type = NPY_FLOAT32;
      break;
    case DType::kFloat64:
      type = NPY_FLOAT64;
      break;
    case DType::kComplex64:
      type = NPY_COMPLEX64;
      break;
    case DType::kComplex128:
      type = NPY_COMPLEX128;
      break;
    case DType::kBFloat16:
      break;
  }
  return PyArray_DescrFromType(type);
}

// A NumPy array over the memory of `a`, which it keeps alive (no copy),
// made with NumPy's C API: no Python call per array.
nb::object array_python(const Array& a) {
  std::vector<npy_intp> dims(a.shape().begin(), a.shape().end());
  std::vector<npy_intp> strides;
  for (int64_t stride : a.strides()) {
    strides.push_back(static_cast<npy_intp>(stride) *
                      static_cast<npy_intp>(dtype_size(a.dtype())));
  }
  PyObject* out = PyArray_NewFromDescr(
      &PyArray_Type, descr_of(a.dtype()), static_cast<int>(dims.size()),
      dims.data(), strides.empty() ? nullptr : strides.data(), a.data(),
      NPY_ARRAY_WRITEABLE, nullptr);
  if (!out) throw nb::python_error();
  nb::object array = nb::steal(out);
  nb::capsule owner(new Array(a),
                    [](void* p) noexcept { delete static_cast<Array*>(p); });
  // The array holds the capsule, which holds ckpt's buffer.
  if (PyArray_SetBaseObject(reinterpret_cast<PyArrayObject*>(out),
                            owner.release().ptr()) != 0) {
    throw nb::python_error();
  }
  return array;
}

nb::object spec_python(const ArraySpec& s) {
  nb::list shape;
  for (int64_t d : s.shape) shape.append(d);
  nb::object dtype = nb::none();
  if (s.dtype) {
    const std::string_view name = dtype_name(*s.dtype);
    nb::object numpy = nb::module_::import_("numpy");
    dtype = name == "bfloat16"
                ? numpy.attr("dtype")(
                      nb::module_::import_("ml_dtypes").attr("bfloat16"))
                : numpy.attr("dtype")(nb::str(name.data(), name.size()));
  }
  return nb::module_::import_("ckpt").attr("ArraySpec")(nb::tuple(shape),
                                                        dtype);
}

}  // namespace

// The UTF-8 of a str; `what` names it in the refusal.
std::string utf8_of(PyObject* p, const std::string& where, const char* what) {
  Py_ssize_t size = 0;
  const char* text = PyUnicode_AsUTF8AndSize(p, &size);
  if (!text) {
    PyErr_Clear();
    refuse(where,
           std::string(what) + " that is not valid Unicode (lone surrogates)");
  }
  return std::string(text, static_cast<size_t>(size));
}

// The type of a torch.Tensor's device ("cpu", "cuda", "meta"); empty for
// other objects.
std::string device_type(nb::handle h) {
  if (!nb::hasattr(h, "device")) return "";
  nb::object device = h.attr("device");
  if (!nb::hasattr(device, "type")) return "";
  return nb::str(device.attr("type")).c_str();
}

// An array whose DLPack export failed for its device (a torch.Tensor on
// "cuda" or "meta"): refused with the device named.
void refuse_off_the_cpu(nb::handle h, const std::string& where) {
  const std::string type = device_type(h);
  if (type.empty() || type == "cpu") return;
  refuse(where, "an array on the device '" + type +
                    "': ckpt saves arrays on the CPU (move it there first, "
                    "e.g. tensor.cpu())");
}

Value to_value(nb::handle h, const std::string& where, Use use) {
  if (h.is_none()) return Value();
  PyObject* p = h.ptr();
  if (PyBool_Check(p)) return Value(p == Py_True);
  if (PyLong_Check(p)) {
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(p, &overflow);
    if (overflow != 0) {
      refuse(where, "the int " + shown(h) + " does not fit in 64 bits");
    }
    return Value(v);
  }
  if (PyFloat_Check(p)) return Value(PyFloat_AsDouble(p));
  if (PyUnicode_Check(p)) {
    return Value(utf8_of(p, where, "a str"));
  }
  if (PyDict_Check(p)) {
    Value::Dict items;
    items.reserve(static_cast<size_t>(PyDict_Size(p)));
    for (auto [key, child] : nb::borrow<nb::dict>(h)) {
      if (!PyUnicode_Check(key.ptr())) {
        refuse(where, "the key " + shown(key) + " is a " +
                          nb::type_name(key.type()).c_str() +
                          "; checkpoint keys are str");
      }
      std::string k = utf8_of(key.ptr(), where, "a key");
      if (std::optional<Value> array = contiguous_numpy(child.ptr(), use)) {
        items.emplace_back(std::move(k), std::move(*array));
        continue;
      }
      std::string at = where + "['" + k + "']";
      items.emplace_back(std::move(k), to_value(child, at, use));
    }
    return Value::dict(std::move(items));
  }
  if (PyList_Check(p) || PyTuple_Check(p)) {
    Value::List items;
    items.reserve(static_cast<size_t>(Py_SIZE(p)));
    size_t i = 0;
    for (nb::handle child : h) {
      std::optional<Value> array = contiguous_numpy(child.ptr(), use);
      items.push_back(
          array ? std::move(*array)
                : to_value(child, where + "[" + std::to_string(i) + "]", use));
      ++i;
    }
    return Value::list(std::move(items));
  }
  if (std::optional<Value> array = array_like(h, where, use)) return *array;
  if (std::optional<Value> spec = scalar_type_spec(p)) return *spec;
  if (looks_like_spec(h)) return spec_value(h, where);
  if (nb::hasattr(h, "dtype") && nb::hasattr(h, "shape")) {
    if (use == Use::kTarget && device_type(h) == "meta") {
      return spec_value(h, where);  // a tensor without data: its spec
    }
    refuse_off_the_cpu(h, where);
    refuse(where, "an array of dtype " + shown(h.attr("dtype")) +
                      " that ckpt cannot read (it stores bool, int8-64, "
                      "uint8-64, float16/32/64, bfloat16, complex64/128, "
                      "on the CPU, through the buffer protocol or DLPack)");
  }
  refuse(where, "a " + std::string(nb::type_name(h.type()).c_str()) +
                    ", which ckpt cannot save (it saves None, bool, int, "
                    "float, str, dicts, lists, tuples and arrays)");
}

nb::object to_python(const Value& v) {
  using K = Value::Kind;
  switch (v.kind()) {
    case K::kNone:
      return nb::none();
    case K::kBool:
      return nb::bool_(v.as_bool());
    case K::kInt:
      return nb::int_(v.as_int());
    case K::kDouble:
      return nb::float_(v.as_double());
    case K::kString:
      return nb::str(v.as_string().data(), v.as_string().size());
    case K::kDict: {
      nb::dict out;
      for (const auto& [key, child] : v.as_dict()) {
        out[nb::str(key.data(), key.size())] = to_python(child);
      }
      return std::move(out);
    }
    case K::kList: {
      nb::list out;
      for (const Value& child : v.as_list()) out.append(to_python(child));
      return std::move(out);
    }
    case K::kJson:
      return nb::module_::import_("json").attr("loads")(v.as_json().dump());
    case K::kArray:
      return array_python(v.as_array());
    case K::kArraySpec:
      return spec_python(v.as_array_spec());
    case K::kShardedSpec: {
      // A sharded array's metadata: Python sees the global array.
      const ShardedSpec& spec = v.as_sharded_spec();
      return spec_python(ArraySpec{spec.dtype, spec.global_shape});
    }
    case K::kScalarSpec: {
      nb::handle builtins = nb::module_::import_("builtins");
      switch (v.scalar_kind()) {
        case K::kBool:
          return builtins.attr("bool");
        case K::kInt:
          return builtins.attr("int");
        case K::kDouble:
          return builtins.attr("float");
        default:
          return builtins.attr("str");
      }
    }
    case K::kObject:
      if (v.as_object().typestr == kPythonObject) {
        return *std::static_pointer_cast<nb::object>(v.as_object().object);
      }
      [[fallthrough]];
    default:
      throw UnimplementedError(
          "a loaded value of a kind Python's ckpt does not return yet (" +
          std::to_string(static_cast<int>(v.kind())) + "): load it from C++");
  }
}

json parse_json(const std::string& text, const char* what) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw InvalidArgumentError(std::string(what) + " is not JSON: " + e.what());
  }
}

std::shared_ptr<nb::object> shared_object(nb::object object) {
  return python_owner(std::move(object));
}

Value checkpointable_value(nb::handle object, const std::string& name,
                           Use use) {
  try {
    return to_value(object, name, use);
  } catch (const InvalidArgumentError&) {
    if (PyDict_Check(object.ptr()) || PyList_Check(object.ptr()) ||
        PyTuple_Check(object.ptr())) {
      throw;  // a tree with a bad leaf: the error names it
    }
    return Value::object(kPythonObject,
                         python_owner(nb::borrow<nb::object>(object)));
  }
}

Checkpointables checkpointables_of(nb::dict items, Use use) {
  Checkpointables out;
  for (auto [key, value] : items) {
    if (!PyUnicode_Check(key.ptr())) {
      throw InvalidArgumentError(
          "checkpointable names are str, not " +
          std::string(nb::type_name(key.type()).c_str()));
    }
    const std::string name = nb::str(key).c_str();
    out.emplace_back(name, checkpointable_value(value, name, use));
  }
  return out;
}

nb::dict checkpointables_python(const Checkpointables& items) {
  nb::dict out;
  for (const auto& [name, value] : items) {
    out[nb::str(name.data(), name.size())] = to_python(value);
  }
  return out;
}

std::string info_json(const CheckpointInfo& info) {
  json handlers = json::object();
  for (const auto& [name, typestr] : info.item_handlers)
    handlers[name] = typestr;
  json out = {{"path", info.path.string()},
              {"item_handlers", handlers},
              {"metrics", info.metrics},
              {"custom_metadata", info.custom_metadata},
              {"init_timestamp_nsecs", nullptr},
              {"commit_timestamp_nsecs", nullptr}};
  if (info.init_timestamp_nsecs)
    out["init_timestamp_nsecs"] = *info.init_timestamp_nsecs;
  if (info.commit_timestamp_nsecs)
    out["commit_timestamp_nsecs"] = *info.commit_timestamp_nsecs;
  return out.dump();
}

void init_numpy() {
  if (_import_array() < 0) throw nb::python_error();
}

}  // namespace ckpt::python
