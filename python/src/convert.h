// Python objects to ckpt::Value and back, with the GIL held.
//
// To a Value: None, bool, int (64-bit), float, str, dict (str keys), list
// and tuple, ckpt.ArraySpec and anything with `shape` and `dtype` but no
// data (jax.ShapeDtypeStruct) as an ArraySpec, and arrays: anything with
// the buffer protocol or __dlpack__ on the CPU (NumPy, JAX, PyTorch), whose
// memory the Value shares without a copy. JAX arrays are immutable: an
// async save writes them without a snapshot.
//
// From a Value: arrays become NumPy arrays that own ckpt's buffers (no
// copy; bfloat16 as ml_dtypes.bfloat16), ArraySpecs ckpt.ArraySpec, JSON
// values Python's.
#ifndef CKPT_PYTHON_SRC_CONVERT_H_
#define CKPT_PYTHON_SRC_CONVERT_H_

#include <ckpt/checkpoint.h>
#include <ckpt/value.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "casters.h"

namespace ckpt::python {

// Imports NumPy's C API (once, when the module loads).
void init_numpy();

// What a tree is converted for: to be saved, or as a load's abstract tree,
// whose writable arrays the load fills in place (a read-only NumPy array is
// marked immutable there, so it is not).
enum class Use { kSave, kTarget };

// Throws ckpt::InvalidArgumentError naming the key path ("tree['a'][0]")
// of what cannot be saved: a key that is not a str, an int beyond 64 bits,
// an object of no supported kind, an array of a dtype ckpt lacks or not on
// the CPU.
Value to_value(nanobind::handle object, const std::string& where, Use use);

nanobind::object to_python(const Value& value);

// A checkpointable's value: to_value, or, when `object` itself (not a leaf
// inside a dict, list or tuple) is of no kind ckpt knows, the Python
// object as is (a UserObject of typestr "python"), for a Python handler.
Value checkpointable_value(nanobind::handle object, const std::string& name,
                           Use use);

// Keeps `object` alive from C++, on any thread: the last holder takes the
// GIL to drop it (and leaks it once the interpreter is gone).
std::shared_ptr<nanobind::object> shared_object(nanobind::object object);

// A dict name -> value as checkpointables (names must be str).
Checkpointables checkpointables_of(nanobind::dict items, Use use);
nanobind::dict checkpointables_python(const Checkpointables& items);

// InvalidArgumentError naming `what` when `text` is not JSON.
nlohmann::json parse_json(const std::string& text, const char* what);

// What a checkpoint records (times, metrics, custom metadata, handlers),
// as JSON text for ckpt/__init__.py.
std::string info_json(const CheckpointInfo& info);

}  // namespace ckpt::python

#endif  // CKPT_PYTHON_SRC_CONVERT_H_
