// ckpt/sdk/error.h -- the exception a plugin's handler code throws.
//
// Handler code may throw anything; the SDK catches it at the ABI boundary.
// sdk::Error carries an ABI error code (e.g. CKPT_ERROR_NOT_FOUND) so the
// host raises the matching C++ exception kind; any other std::exception
// becomes CKPT_ERROR_PLUGIN with its what() as the message.
#ifndef CKPT_SDK_ERROR_H_
#define CKPT_SDK_ERROR_H_

#include <ckpt/abi.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace ckpt::sdk {

// The error code of an errno value. The one errno table of ckpt: the core
// sorts its own OS failures with it too. ABI 1.1 codes (permission, no
// space, I/O) reach a 1.0 host as CKPT_ERROR_INTERNAL (see plugin.h).
inline ckpt_error_code error_code_from_errno(int errnum) {
  switch (errnum) {
    case ENOENT:
      return CKPT_ERROR_NOT_FOUND;
    case EEXIST:
    case ENOTEMPTY:
      return CKPT_ERROR_ALREADY_EXISTS;
    case ENOTDIR:
    case EISDIR:
    case ENAMETOOLONG:
    case ELOOP:
      return CKPT_ERROR_INVALID_ARGUMENT;
    case EACCES:
    case EPERM:
    case EROFS:
      return CKPT_ERROR_PERMISSION_DENIED;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return CKPT_ERROR_NO_SPACE;
    case ENOMEM:
      return CKPT_ERROR_INTERNAL;
    default:
      return CKPT_ERROR_IO;
  }
}

class Error : public std::runtime_error {
 public:
  Error(ckpt_error_code code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  ckpt_error_code code() const noexcept { return code_; }

 private:
  ckpt_error_code code_;
};

// Throws the Error of `errnum` with the message "<what>: <OS message>";
// `what` names the operation and the file ("cannot create /a/b").
[[noreturn]] inline void throw_os_error(int errnum, const std::string& what) {
  throw Error(error_code_from_errno(errnum),
              what + ": " + std::strerror(errnum));
}

}  // namespace ckpt::sdk

#endif  // CKPT_SDK_ERROR_H_
