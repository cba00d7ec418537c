#include <ckpt/errors.h>
#include <ckpt/sdk/error.h>

#include <cstring>
#include <new>
#include <system_error>

#include "util/error_conversion.h"

namespace ckpt {

namespace {

struct KindInfo {
  ErrorKind kind;
  ckpt_error_code code;
  const char* name;
};

constexpr KindInfo kKinds[] = {
    {ErrorKind::kInternal, CKPT_ERROR_INTERNAL, "internal"},
    {ErrorKind::kInvalidArgument, CKPT_ERROR_INVALID_ARGUMENT,
     "invalid argument"},
    {ErrorKind::kNotFound, CKPT_ERROR_NOT_FOUND, "not found"},
    {ErrorKind::kAlreadyExists, CKPT_ERROR_ALREADY_EXISTS, "already exists"},
    {ErrorKind::kNoEntry, CKPT_ERROR_NO_ENTRY, "no entry"},
    {ErrorKind::kInvalidLayout, CKPT_ERROR_INVALID_LAYOUT, "invalid layout"},
    {ErrorKind::kTimeout, CKPT_ERROR_TIMEOUT, "timeout"},
    {ErrorKind::kPlugin, CKPT_ERROR_PLUGIN, "plugin error"},
    {ErrorKind::kDataLoss, CKPT_ERROR_DATA_LOSS, "data loss"},
    {ErrorKind::kUnimplemented, CKPT_ERROR_UNIMPLEMENTED, "unimplemented"},
    {ErrorKind::kPermissionDenied, CKPT_ERROR_PERMISSION_DENIED,
     "permission denied"},
    {ErrorKind::kNoSpace, CKPT_ERROR_NO_SPACE, "no space"},
    {ErrorKind::kIO, CKPT_ERROR_IO, "I/O error"},
};

const KindInfo* find_kind(ErrorKind kind) {
  for (const KindInfo& k : kKinds) {
    if (k.kind == kind) return &k;
  }
  return nullptr;
}

// "filesystem error: cannot create directories: Not a directory [/a/b]"
// -> "cannot create directories: Not a directory [/a/b]".
std::string os_message(const std::system_error& e) {
  std::string text = e.what();
  constexpr const char* kPrefix = "filesystem error: ";
  if (text.rfind(kPrefix, 0) == 0) text.erase(0, std::strlen(kPrefix));
  return text;
}

}  // namespace

const char* error_kind_name(ErrorKind kind) {
  const KindInfo* k = find_kind(kind);
  return k ? k->name : "unknown";
}

void throw_error(ErrorKind kind, const std::string& message) {
  switch (kind) {
    case ErrorKind::kInternal:
      throw InternalError(message);
    case ErrorKind::kInvalidArgument:
      throw InvalidArgumentError(message);
    case ErrorKind::kNotFound:
      throw NotFoundError(message);
    case ErrorKind::kAlreadyExists:
      throw AlreadyExistsError(message);
    case ErrorKind::kNoEntry:
      throw NoEntryError(message);
    case ErrorKind::kInvalidLayout:
      throw InvalidLayoutError(message);
    case ErrorKind::kTimeout:
      throw TimeoutError(message);
    case ErrorKind::kPlugin:
      throw PluginError(message);
    case ErrorKind::kDataLoss:
      throw DataLossError(message);
    case ErrorKind::kUnimplemented:
      throw UnimplementedError(message);
    case ErrorKind::kPermissionDenied:
      throw PermissionDeniedError(message);
    case ErrorKind::kNoSpace:
      throw NoSpaceError(message);
    case ErrorKind::kIO:
      throw IOError(message);
  }
  throw InternalError(message);
}

ErrorKind error_kind_from_errno(int errnum) {
  return internal::error_kind_from_code(sdk::error_code_from_errno(errnum));
}

void throw_os_error(int errnum, const std::string& what) {
  throw_error(error_kind_from_errno(errnum),
              what + ": " + std::strerror(errnum));
}

namespace internal {

ErrorKind error_kind_from_code(ckpt_error_code code) {
  for (const KindInfo& k : kKinds) {
    if (k.code == code) return k.kind;
  }
  return ErrorKind::kPlugin;
}

std::exception_ptr current_exception_as_error(const std::string& prefix) {
  const std::string lead = prefix.empty() ? "" : prefix + ": ";
  ErrorKind kind = ErrorKind::kInternal;
  std::string message;
  try {
    throw;
  } catch (const Error& e) {
    if (prefix.empty()) return std::current_exception();
    kind = e.kind();
    message = e.what();
  } catch (const sdk::Error& e) {
    kind = error_kind_from_code(e.code());
    message = e.what();
  } catch (const std::system_error& e) {
    const bool is_errno = e.code().category() == std::generic_category() ||
                          e.code().category() == std::system_category();
    if (is_errno) kind = error_kind_from_errno(e.code().value());
    message = os_message(e);
  } catch (const std::bad_alloc&) {
    message = "out of memory";
  } catch (const std::exception& e) {
    message = e.what();
  } catch (...) {
    message = "unknown error";
  }
  try {
    throw_error(kind, lead + message);
  } catch (...) {
    return std::current_exception();
  }
}

}  // namespace internal

}  // namespace ckpt
