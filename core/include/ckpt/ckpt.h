// ckpt/ckpt.h -- the whole public C++ API of libckpt.
#ifndef CKPT_CKPT_H_
#define CKPT_CKPT_H_

#include <ckpt/checkpoint.h>
#include <ckpt/checkpointer.h>
#include <ckpt/context.h>
#include <ckpt/dlpack.h>
#include <ckpt/errors.h>
#include <ckpt/handler.h>
#include <ckpt/plugins.h>
#include <ckpt/registry.h>
#include <ckpt/remote.h>
#include <ckpt/stateful.h>
#include <ckpt/value.h>

#endif  // CKPT_CKPT_H_
