// nanobind's type casters of the standard types the binding converts,
// included by every file of it (through convert.h or directly). A caster
// that one file sees and another does not gives two meanings to the same
// template (nanobind calling a Python function with a std::string, say),
// and the linker keeps either: in a debug build, the one without it.
#ifndef CKPT_PYTHON_SRC_CASTERS_H_
#define CKPT_PYTHON_SRC_CASTERS_H_

#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#endif  // CKPT_PYTHON_SRC_CASTERS_H_
