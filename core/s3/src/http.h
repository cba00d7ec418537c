// One HTTP exchange over libcurl, on a connection this thread reuses.
#ifndef CKPT_S3_SRC_HTTP_H_
#define CKPT_S3_SRC_HTTP_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ckpt::s3 {

struct HttpRequest {
  std::string method;
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  const char* body = nullptr;  // sent as is, body_size bytes
  size_t body_size = 0;
  // Where a 2xx response's body goes: to `fd` at `fd_offset` (pwrite) when
  // fd >= 0, else into HttpResponse::body, refused past max_body bytes.
  int fd = -1;
  int64_t fd_offset = 0;
  int64_t max_body = int64_t{1} << 30;
  double connect_timeout_seconds = 10;
  double stall_timeout_seconds = 30;
  double total_timeout_seconds = 0;  // the whole exchange; 0: no limit
};

struct HttpResponse {
  // 0 when the exchange broke (transport_error says how).
  long status = 0;
  std::string transport_error;
  // The failure was ours (the file could not be written, the body was too
  // large), not the network's: no retry helps.
  bool local_error = false;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  int64_t body_bytes = 0;  // received, whether kept or written
  std::string header(const std::string& name) const;
};

HttpResponse perform(const HttpRequest& request);

}  // namespace ckpt::s3

#endif  // CKPT_S3_SRC_HTTP_H_
