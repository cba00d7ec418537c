// ckpt/sdk/error.h -- the exception a plugin's handler code throws.
//
// Handler code may throw anything; the SDK catches it at the ABI boundary.
// sdk::Error carries an ABI error code (e.g. CKPT_ERROR_NOT_FOUND) so the
// host raises the matching C++ exception kind; any other std::exception
// becomes CKPT_ERROR_PLUGIN with its what() as the message.
#ifndef CKPT_SDK_ERROR_H_
#define CKPT_SDK_ERROR_H_

#include <ckpt/abi.h>

#include <stdexcept>
#include <string>

namespace ckpt::sdk {

class Error : public std::runtime_error {
 public:
  Error(ckpt_error_code code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  ckpt_error_code code() const noexcept { return code_; }

 private:
  ckpt_error_code code_;
};

}  // namespace ckpt::sdk

#endif  // CKPT_SDK_ERROR_H_
