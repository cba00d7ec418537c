// The one conversion of failures into ckpt::Error: OS errors, standard
// exceptions and the C ABI's error codes.
#ifndef CKPT_SRC_UTIL_ERROR_CONVERSION_H_
#define CKPT_SRC_UTIL_ERROR_CONVERSION_H_

#include <ckpt/abi.h>
#include <ckpt/errors.h>

#include <exception>
#include <string>

namespace ckpt::internal {

// The error kind of an ABI error code. An unknown code (from a newer
// plugin) is kPlugin.
ErrorKind error_kind_from_code(ckpt_error_code code);

// The exception in flight as a ckpt::Error, its message prefixed with
// "<prefix>: " unless prefix is empty. A ckpt::Error keeps its kind (and,
// without a prefix, is returned as it is); sdk::Error (from the SDK's file
// helpers) gets the kind of its code; std::system_error (and
// std::filesystem::filesystem_error) is sorted by its errno; bad_alloc is
// kInternal "out of memory"; anything else kInternal. Call only in catch.
std::exception_ptr current_exception_as_error(const std::string& prefix = "");

// Runs `body`; whatever it throws leaves as a ckpt::Error (see above).
template <class F>
auto with_errors_converted(F body) -> decltype(body()) {
  try {
    return body();
  } catch (...) {
    std::rethrow_exception(current_exception_as_error());
  }
}

}  // namespace ckpt::internal

#endif  // CKPT_SRC_UTIL_ERROR_CONVERSION_H_
