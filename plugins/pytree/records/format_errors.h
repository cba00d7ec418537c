// The two ways decoding a record can fail (ckpt's _METADATA and
// _TREE_INDEX, Orbax's OCDBT and zarr), before the caller adds which file
// or key it was: the bytes are not what any writer produces (Damaged, then
// CKPT_ERROR_DATA_LOSS), or they use a part of a format this reader does
// not decode (Unsupported, then CKPT_ERROR_UNIMPLEMENTED). The text says
// what.
#ifndef CKPT_PLUGINS_PYTREE_RECORDS_FORMAT_ERRORS_H_
#define CKPT_PLUGINS_PYTREE_RECORDS_FORMAT_ERRORS_H_

#include <stdexcept>

namespace ckpt::pytree {

class Damaged : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Unsupported : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace ckpt::pytree

#endif  // CKPT_PLUGINS_PYTREE_RECORDS_FORMAT_ERRORS_H_
