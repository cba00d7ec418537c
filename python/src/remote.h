// ckpt._ckpt's remote functions: checkpoints copied to and from a store
// (ckpt/remote.h), for ckpt/remote.py; and the store of a URL, for the
// Checkpointer's remote tier (training.cpp).
#ifndef CKPT_PYTHON_SRC_REMOTE_H_
#define CKPT_PYTHON_SRC_REMOTE_H_

#include <ckpt/remote.h>

#include <memory>
#include <string>

#include "casters.h"

namespace ckpt::python {

// The store at `url`: ckpt-s3's for "s3://bucket/prefix", a directory
// store for a local folder.
std::shared_ptr<RemoteStore> store_at(const std::string& url);

void bind_remote(nanobind::module_& m);

}  // namespace ckpt::python

#endif  // CKPT_PYTHON_SRC_REMOTE_H_
