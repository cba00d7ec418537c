// Diagnostics to stderr. Level from CKPT_LOG_LEVEL (debug, info, warning,
// error, off); default warning.
#ifndef CKPT_SRC_UTIL_LOGGING_H_
#define CKPT_SRC_UTIL_LOGGING_H_

#include <ckpt/abi.h>

#include <string>

namespace ckpt::internal {

void log(ckpt_log_level level, const std::string& message);

}  // namespace ckpt::internal

#endif  // CKPT_SRC_UTIL_LOGGING_H_
