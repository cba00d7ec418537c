// ckpt._ckpt.Checkpointer: ckpt::Checkpointer for ckpt/training.py, with
// its policies given as JSON (ckpt/training.py's policy classes).
#ifndef CKPT_PYTHON_SRC_TRAINING_H_
#define CKPT_PYTHON_SRC_TRAINING_H_

#include "casters.h"

namespace ckpt::python {

void bind_training(nanobind::module_& m);

}  // namespace ckpt::python

#endif  // CKPT_PYTHON_SRC_TRAINING_H_
