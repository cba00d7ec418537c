#include <ckpt/errors.h>

namespace ckpt {

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInternal:
      return "internal";
    case ErrorKind::kInvalidArgument:
      return "invalid argument";
    case ErrorKind::kNotFound:
      return "not found";
    case ErrorKind::kAlreadyExists:
      return "already exists";
    case ErrorKind::kNoEntry:
      return "no entry";
    case ErrorKind::kInvalidLayout:
      return "invalid layout";
    case ErrorKind::kTimeout:
      return "timeout";
    case ErrorKind::kPlugin:
      return "plugin error";
    case ErrorKind::kDataLoss:
      return "data loss";
    case ErrorKind::kUnimplemented:
      return "unimplemented";
  }
  return "unknown";
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
  }
  throw InternalError(message);
}

}  // namespace ckpt
