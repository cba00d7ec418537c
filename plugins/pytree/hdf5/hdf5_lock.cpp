#include "hdf5/hdf5_lock.h"

#include <ckpt/sdk/error.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace ckpt::pytree {

namespace {

// The errno HDF5 recorded in `message` ("..., errno = 28, ..."); 0 if none.
int errno_in(const std::string& message) {
  const std::string key = "errno = ";
  const size_t at = message.find(key);
  if (at == std::string::npos) return 0;
  return std::atoi(message.c_str() + at + key.size());
}

}  // namespace

std::string hdf5_message() {
  std::string message;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* e, void* data) -> herr_t {
        auto* out = static_cast<std::string*>(data);
        if (n == 0 && e->desc) *out = e->desc;
        return 0;
      },
      &message);
  H5Eclear2(H5E_DEFAULT);
  return message.empty() ? "unknown HDF5 error" : message;
}

[[noreturn]] void fail(ckpt_error_code code, const std::string& message) {
  std::string detail = hdf5_message();
  std::replace(detail.begin(), detail.end(), '\n', ' ');
  if (const int err = errno_in(detail);
      err > 0 && code == CKPT_ERROR_INTERNAL) {
    throw ckpt::sdk::Error(
        ckpt::sdk::error_code_from_errno(err),
        message + ": " + std::strerror(err) + " (" + detail + ")");
  }
  throw ckpt::sdk::Error(code, message + " (" + detail + ")");
}

void check(herr_t status, const std::string& what) {
  if (status < 0) fail(CKPT_ERROR_INTERNAL, what);
}

}  // namespace ckpt::pytree
