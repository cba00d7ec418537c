#include "util/logging.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace ckpt::internal {

namespace {

int threshold() {
  static const int level = [] {
    const char* env = std::getenv("CKPT_LOG_LEVEL");
    if (!env) return static_cast<int>(CKPT_LOG_WARNING);
    if (!std::strcmp(env, "debug")) return static_cast<int>(CKPT_LOG_DEBUG);
    if (!std::strcmp(env, "info")) return static_cast<int>(CKPT_LOG_INFO);
    if (!std::strcmp(env, "error")) return static_cast<int>(CKPT_LOG_ERROR);
    if (!std::strcmp(env, "off")) return static_cast<int>(CKPT_LOG_ERROR) + 1;
    return static_cast<int>(CKPT_LOG_WARNING);
  }();
  return level;
}

const char* level_name(ckpt_log_level level) {
  switch (level) {
    case CKPT_LOG_DEBUG:
      return "debug";
    case CKPT_LOG_INFO:
      return "info";
    case CKPT_LOG_WARNING:
      return "warning";
    case CKPT_LOG_ERROR:
      return "error";
  }
  return "log";
}

}  // namespace

void log(ckpt_log_level level, const std::string& message) {
  if (static_cast<int>(level) < threshold()) return;
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  std::fprintf(stderr, "ckpt %s: %s\n", level_name(level), message.c_str());
}

}  // namespace ckpt::internal
