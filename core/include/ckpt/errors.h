// ckpt/errors.h -- the one exception hierarchy of the C++ API.
//
// Every failure of a ckpt call is a ckpt::Error; its kind() says which of
// the kinds below it is, and what() names the path, checkpointable or
// plugin file involved. Failures of the operating system keep its message
// and are sorted by errno (error_kind_from_errno): a missing path is
// kNotFound, a refused one kPermissionDenied, a full disk kNoSpace.
#ifndef CKPT_ERRORS_H_
#define CKPT_ERRORS_H_

#include <ckpt/export.h>

#include <stdexcept>
#include <string>

namespace ckpt {

enum class ErrorKind {
  kInternal,
  kInvalidArgument,  // bad name, reserved name, path traversal, bad value
  kNotFound,         // a file or checkpointable that should be there is not
  kAlreadyExists,    // destination exists, duplicate registration
  kNoEntry,          // no handler for a checkpointable
  kInvalidLayout,    // not a (complete) checkpoint folder
  kTimeout,
  kPlugin,    // a plugin failed to load or a handler failed
  kDataLoss,  // corrupt or truncated data
  kUnimplemented,
  kPermissionDenied,  // the OS refused access (EACCES, EPERM, EROFS)
  kNoSpace,           // no space left on the device (ENOSPC, EDQUOT, EFBIG)
  kIO,                // any other failure of the OS (EIO, ...)
};

// "invalid argument", "no entry", ...
CKPT_API const char* error_kind_name(ErrorKind kind);

class CKPT_API Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message)
      : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

#define CKPT_DEFINE_ERROR(Name, Kind)         \
  class CKPT_API Name : public Error {        \
   public:                                    \
    explicit Name(const std::string& message) \
        : Error(ErrorKind::Kind, message) {}  \
  };

CKPT_DEFINE_ERROR(InternalError, kInternal)
CKPT_DEFINE_ERROR(InvalidArgumentError, kInvalidArgument)
CKPT_DEFINE_ERROR(NotFoundError, kNotFound)
CKPT_DEFINE_ERROR(AlreadyExistsError, kAlreadyExists)
CKPT_DEFINE_ERROR(NoEntryError, kNoEntry)
CKPT_DEFINE_ERROR(InvalidLayoutError, kInvalidLayout)
CKPT_DEFINE_ERROR(TimeoutError, kTimeout)
CKPT_DEFINE_ERROR(PluginError, kPlugin)
CKPT_DEFINE_ERROR(DataLossError, kDataLoss)
CKPT_DEFINE_ERROR(UnimplementedError, kUnimplemented)
CKPT_DEFINE_ERROR(PermissionDeniedError, kPermissionDenied)
CKPT_DEFINE_ERROR(NoSpaceError, kNoSpace)
CKPT_DEFINE_ERROR(IOError, kIO)

#undef CKPT_DEFINE_ERROR

// Throws the exception class of `kind` with `message`.
[[noreturn]] CKPT_API void throw_error(ErrorKind kind,
                                       const std::string& message);

// The kind of an errno value: ENOENT kNotFound; EEXIST, ENOTEMPTY
// kAlreadyExists; ENOTDIR, EISDIR, ENAMETOOLONG, ELOOP kInvalidArgument (the
// path cannot be one); EACCES, EPERM, EROFS kPermissionDenied; ENOSPC,
// EDQUOT, EFBIG kNoSpace; ENOMEM kInternal; anything else kIO.
CKPT_API ErrorKind error_kind_from_errno(int errnum);

// Throws the error of `errnum` with the message "<what>: <OS message>";
// `what` names the operation and the path ("cannot create /a/b").
[[noreturn]] CKPT_API void throw_os_error(int errnum, const std::string& what);

}  // namespace ckpt

#endif  // CKPT_ERRORS_H_
