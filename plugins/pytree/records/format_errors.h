// The two ways decoding Orbax's storage can fail, before the caller adds
// which file or key it was: the bytes are not what any writer produces
// (Damaged, CKPT_ERROR_DATA_LOSS), or they use a part of a format this
// reader does not decode (Unsupported, CKPT_ERROR_UNIMPLEMENTED). The text
// says what.
#ifndef CKPT_PLUGINS_PYTREE_RECORDS_FORMAT_ERRORS_H_
#define CKPT_PLUGINS_PYTREE_RECORDS_FORMAT_ERRORS_H_

#include <stdexcept>

namespace ckpt::pytree::orbax {

class Damaged : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Unsupported : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace ckpt::pytree::orbax

#endif  // CKPT_PLUGINS_PYTREE_RECORDS_FORMAT_ERRORS_H_
