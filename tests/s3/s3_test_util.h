// What the tests under tests/s3/s3_env.py share: its variables, a prefix
// per case, quick retries, and JSON over HTTP to its control endpoints.
#ifndef CKPT_TESTS_S3_S3_TEST_UTIL_H_
#define CKPT_TESTS_S3_S3_TEST_UTIL_H_

#include <ckpt/s3.h>

#include <atomic>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <string>

#include "http.h"

namespace ckpt::test {

inline std::string env(const char* name) {
  const char* value = std::getenv(name);
  if (!value) {
    throw std::runtime_error(std::string(name) +
                             " is not set: run under tests/s3/s3_env.py");
  }
  return value;
}

// A prefix of its own for each test case, so that cases never meet.
inline std::string fresh_prefix() {
  static std::atomic<int> n{0};
  std::random_device random;
  return "t" + std::to_string(random() % 100000) + "-" + std::to_string(n++);
}

inline S3Options fast_retries() {
  S3Options options;
  options.initial_backoff_seconds = 0.01;
  options.max_backoff_seconds = 0.05;
  options.stall_timeout_seconds = 1;
  options.part_size = 5 << 20;
  return options;
}

// `method` of `url` with `body`; the JSON of its 200 answer (throws on
// another status).
inline nlohmann::json http_json(const std::string& method,
                                const std::string& url,
                                const std::string& body) {
  s3::HttpRequest request;
  request.method = method;
  request.url = url;
  request.body = body.data();
  request.body_size = body.size();
  if (method == "POST") {
    request.headers = {{"Content-Length", std::to_string(body.size())}};
  }
  const s3::HttpResponse r = s3::perform(request);
  if (r.status != 200) {
    throw std::runtime_error(method + " " + url + ": HTTP " +
                             std::to_string(r.status) + " " +
                             r.transport_error);
  }
  return nlohmann::json::parse(r.body);
}

}  // namespace ckpt::test

#endif  // CKPT_TESTS_S3_S3_TEST_UTIL_H_
