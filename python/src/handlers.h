// Handlers and registries for ckpt/handlers.py: a Python class with
// Orbax's CheckpointableHandler methods as a ckpt::Handler (the blocking
// tier on the caller's thread with the GIL, the background tier on ckpt's
// pool taking it), plugin handlers by typestr, and registries.
#ifndef CKPT_PYTHON_SRC_HANDLERS_H_
#define CKPT_PYTHON_SRC_HANDLERS_H_

#include <ckpt/handler.h>
#include <ckpt/registry.h>

#include <memory>

#include "casters.h"

namespace ckpt::python {

// What Python holds of a handler and of a registry.
struct PyHandlerRef {
  HandlerPtr handler;
};
struct PyRegistry {
  std::shared_ptr<Registry> registry;
};

// The registry of a Python ckpt.handlers.Registry (None: null).
RegistryPtr registry_of(nanobind::handle registry);

void bind_handlers(nanobind::module_& m);

}  // namespace ckpt::python

#endif  // CKPT_PYTHON_SRC_HANDLERS_H_
