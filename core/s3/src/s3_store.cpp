// s3_store(): RemoteStore over S3's REST protocol (ckpt/s3.h).
#include <ckpt/errors.h>
#include <ckpt/s3.h>
#include <ckpt/sdk/parallel.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "aws_config.h"
#include "http.h"
#include "sigv4.h"
#include "xml.h"

namespace ckpt {
namespace {

using s3::HttpRequest;
using s3::HttpResponse;
using Query = std::vector<std::pair<std::string, std::string>>;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr int64_t kLeastPart = 5 << 20;
constexpr int kMaxParts = 10000;

// Closes a file descriptor at scope end.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Caps the requests in flight of one store.
class Slots {
 public:
  explicit Slots(int n) : free_(n) {}
  void acquire() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return free_ > 0; });
    --free_;
  }
  void release() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++free_;
    }
    cv_.notify_one();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int free_;
};

// The length a 206's Content-Range promises ("bytes a-b/size"), or
// `fallback` when it has none.
int64_t range_length(const HttpResponse& r, int64_t fallback) {
  const std::string range = r.header("content-range");
  long long a = 0, b = 0;
  if (std::sscanf(range.c_str(), "bytes %lld-%lld/", &a, &b) != 2 || b < a) {
    return fallback;
  }
  return b - a + 1;
}

bool retryable(const HttpResponse& r, const std::string& code) {
  if (r.status == 0) return !r.local_error;
  return r.status == 500 || r.status == 502 || r.status == 503 ||
         r.status == 504 || r.status == 429 || r.status == 408 ||
         (r.status == 400 && code == "RequestTimeout") ||
         (r.status == 409 && code == "ConditionalRequestConflict");
}

class S3Store : public RemoteStore {
 public:
  S3Store(std::string bucket, std::string prefix, const S3Options& options)
      : bucket_(std::move(bucket)),
        prefix_(std::move(prefix)),
        options_(options),
        config_(s3::resolve_config(options, bucket_)),
        slots_(std::max(1, options.parallelism)) {}

  std::string url() const override {
    return "s3://" + bucket_ + (prefix_.empty() ? "" : "/" + prefix_);
  }

  void put_file(const std::string& key,
                const std::string& local_path) override {
    Fd file{::open(local_path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (file.fd < 0) throw_os_error(errno, "cannot open " + local_path);
    struct stat st {};
    if (::fstat(file.fd, &st) != 0) {
      throw_os_error(errno, "cannot stat " + local_path);
    }
    const int64_t size = st.st_size;
    const int64_t part = part_size_for(size);
    if (size <= part) {
      const std::string bytes = read_range(file.fd, 0, size, local_path);
      send_object(key, bytes, {});
      return;
    }
    multipart_upload(key, file.fd, size, part, local_path);
  }

  bool put_if_absent(const std::string& key,
                     const std::string& bytes) override {
    const HttpResponse r = send_object(key, bytes, {{"If-None-Match", "*"}},
                                       /*absent_only=*/true);
    return r.status != 412;
  }

  std::string get(const std::string& key, int64_t offset,
                  int64_t length) override {
    if (offset < 0) throw InvalidArgumentError("a negative offset");
    if (length == 0) return "";
    Headers headers;
    if (offset > 0 || length > 0) {
      headers.emplace_back(
          "Range", "bytes=" + std::to_string(offset) + "-" +
                       (length > 0 ? std::to_string(offset + length - 1) : ""));
    }
    HttpRequest request;
    HttpResponse r = exchange("GET", key, {}, headers, request, {416});
    if (r.status == 416) {
      if (offset == 0) return "";  // an empty object
      throw InvalidArgumentError("the offset " + std::to_string(offset) +
                                 " lies past the end of " + shown(key));
    }
    return std::move(r.body);
  }

  void get_file(const std::string& key,
                const std::string& local_path) override {
    Fd file{::open(local_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                   0644)};
    if (file.fd < 0) throw_os_error(errno, "cannot create " + local_path);
    // The first part tells the size; the rest come in parallel.
    const int64_t part = options_.part_size;
    const int64_t first = fetch_range(key, file.fd, 0, part, true);
    if (first <= part) return;
    const int64_t parts = (first + part - 1) / part;
    sdk::parallel_for(static_cast<size_t>(parts - 1), threads(), [&](size_t i) {
      const int64_t offset = static_cast<int64_t>(i + 1) * part;
      fetch_range(key, file.fd, offset, std::min(part, first - offset), false);
    });
  }

  std::vector<RemoteObject> list(const std::string& prefix) override {
    std::vector<RemoteObject> out;
    std::string token;
    const std::string full = join(prefix);
    for (;;) {
      Query query = {{"list-type", "2"}, {"prefix", full}};
      if (!token.empty()) query.emplace_back("continuation-token", token);
      HttpRequest request;
      request.max_body = 64 << 20;
      const HttpResponse r = exchange("GET", "", query, {}, request, {});
      const std::string base = prefix_.empty() ? "" : prefix_ + "/";
      for (const std::string& item : s3::xml_all(r.body, "Contents")) {
        const std::string key = s3::xml_first(item, "Key");
        const std::string size = s3::xml_first(item, "Size");
        if (key.compare(0, base.size(), base) != 0 ||
            key.size() == base.size()) {
          continue;
        }
        RemoteObject object;
        object.key = key.substr(base.size());
        object.size = std::strtoll(size.c_str(), nullptr, 10);
        if (size.empty() || object.size < 0) {
          throw IOError("listing " + shown(prefix) + ": " + object.key +
                        " has no valid size");
        }
        out.push_back(std::move(object));
      }
      if (s3::xml_first(r.body, "IsTruncated") != "true") break;
      token = s3::xml_first(r.body, "NextContinuationToken");
      if (token.empty()) {
        throw IOError("listing " + shown(prefix) +
                      ": a truncated answer without a continuation token");
      }
    }
    std::sort(out.begin(), out.end(),
              [](const RemoteObject& a, const RemoteObject& b) {
                return a.key < b.key;
              });
    return out;
  }

  void remove(const std::string& key) override {
    HttpRequest request;
    exchange("DELETE", key, {}, {}, request, {404});
  }

 private:
  std::string join(const std::string& key) const {
    return prefix_.empty() ? key : prefix_ + "/" + key;
  }
  size_t threads() const {
    return static_cast<size_t>(std::max(1, options_.parallelism));
  }
  std::string shown(const std::string& key) const {
    return "s3://" + bucket_ + "/" + join(key);
  }

  int64_t part_size_for(int64_t size) const {
    int64_t part = std::max(options_.part_size, kLeastPart);
    // S3 takes at most 10,000 parts: larger files get larger parts.
    while (size / part >= kMaxParts) part *= 2;
    return part;
  }

  static std::string read_range(int fd, int64_t offset, int64_t size,
                                const std::string& path) {
    std::string bytes(static_cast<size_t>(size), '\0');
    int64_t done = 0;
    while (done < size) {
      const ssize_t n =
          ::pread(fd, bytes.data() + done, static_cast<size_t>(size - done),
                  static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw_os_error(errno, "cannot read " + path);
      if (n == 0) throw IOError(path + " shrank while it was uploaded");
      done += n;
    }
    return bytes;
  }

  HttpResponse send_object(const std::string& key, const std::string& bytes,
                           Headers headers, bool absent_only = false) {
    HttpRequest request;
    request.body = bytes.data();
    request.body_size = bytes.size();
    headers.emplace_back("Content-Length", std::to_string(bytes.size()));
    return exchange("PUT", key, {}, headers, request,
                    absent_only ? std::vector<long>{412} : std::vector<long>{},
                    s3::sha256_hex(bytes.data(), bytes.size()));
  }

  void multipart_upload(const std::string& key, int fd, int64_t size,
                        int64_t part, const std::string& path) {
    HttpRequest start;
    const HttpResponse created =
        exchange("POST", key, {{"uploads", ""}}, {}, start, {});
    const std::string upload_id = s3::xml_first(created.body, "UploadId");
    if (upload_id.empty()) {
      throw IOError("starting the upload of " + shown(key) +
                    ": the answer names no UploadId");
    }
    const size_t parts = static_cast<size_t>((size + part - 1) / part);
    std::vector<std::string> etags(parts);
    try {
      sdk::parallel_for(parts, threads(), [&](size_t i) {
        const int64_t offset = static_cast<int64_t>(i) * part;
        const std::string bytes =
            read_range(fd, offset, std::min(part, size - offset), path);
        HttpRequest request;
        request.body = bytes.data();
        request.body_size = bytes.size();
        const HttpResponse r = exchange(
            "PUT", key,
            {{"partNumber", std::to_string(i + 1)}, {"uploadId", upload_id}},
            {{"Content-Length", std::to_string(bytes.size())}}, request, {},
            s3::sha256_hex(bytes.data(), bytes.size()));
        etags[i] = r.header("etag");
        if (etags[i].empty()) {
          throw IOError("uploading part " + std::to_string(i + 1) + " of " +
                        shown(key) + ": the answer has no ETag");
        }
      });
      std::string body = "<CompleteMultipartUpload>";
      for (size_t i = 0; i < parts; ++i) {
        body += "<Part><PartNumber>" + std::to_string(i + 1) +
                "</PartNumber><ETag>" + s3::xml_escape(etags[i]) +
                "</ETag></Part>";
      }
      body += "</CompleteMultipartUpload>";
      HttpRequest done;
      done.body = body.data();
      done.body_size = body.size();
      const HttpResponse r =
          exchange("POST", key, {{"uploadId", upload_id}},
                   {{"Content-Length", std::to_string(body.size())}}, done, {},
                   s3::sha256_hex(body.data(), body.size()));
      // S3 may answer 200 and put the error in the body.
      if (r.body.find("<Error>") != std::string::npos) {
        throw IOError("completing the upload of " + shown(key) + ": " +
                      s3::xml_first(r.body, "Code") + " (" +
                      s3::xml_first(r.body, "Message") + ")");
      }
    } catch (...) {
      try {
        HttpRequest abort;
        exchange("DELETE", key, {{"uploadId", upload_id}}, {}, abort, {404});
      } catch (const std::exception&) {
        // The upload's error is the one to report.
      }
      throw;
    }
  }

  // GETs [offset, offset + length) of `key` into `fd` at `offset`; the
  // object's size (first: read from Content-Range or Content-Length).
  int64_t fetch_range(const std::string& key, int fd, int64_t offset,
                      int64_t length, bool first) {
    HttpRequest request;
    request.fd = fd;
    request.fd_offset = offset;
    const HttpResponse r =
        exchange("GET", key, {},
                 {{"Range", "bytes=" + std::to_string(offset) + "-" +
                                std::to_string(offset + length - 1)}},
                 request, {416}, "", first ? -1 : length);
    if (r.status == 416) return 0;  // an empty object
    const std::string range = r.header("content-range");
    const size_t slash = range.rfind('/');
    if (slash == std::string::npos) return r.body_bytes;  // 200: all of it
    return std::strtoll(range.c_str() + slash + 1, nullptr, 10);
  }

  // One request with retries. `accepted` lists error statuses returned to
  // the caller instead of thrown; `expected_body` >= 0: a 2xx body shorter
  // than that is a broken transfer (tried again).
  HttpResponse exchange(const std::string& method, const std::string& key,
                        const Query& query, const Headers& headers,
                        HttpRequest& request, const std::vector<long>& accepted,
                        const std::string& payload_sha256 = "",
                        int64_t expected_body = -1);

  [[noreturn]] void fail(const std::string& method, const std::string& key,
                         const HttpResponse& r, const std::string& code,
                         int tries) const;

  std::string bucket_;
  std::string prefix_;
  S3Options options_;
  s3::ResolvedConfig config_;
  Slots slots_;
};

HttpResponse S3Store::exchange(const std::string& method,
                               const std::string& key, const Query& query,
                               const Headers& headers, HttpRequest& request,
                               const std::vector<long>& accepted,
                               const std::string& payload_sha256,
                               int64_t expected_body) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  // The bucket's own requests (a listing) have no key.
  std::string path = config_.path_style ? "/" + bucket_ : "";
  if (!key.empty()) {
    path += "/" + s3::uri_encode(join(key), true);
  } else if (!config_.path_style) {
    path = "/";
  }
  const std::string query_text = s3::canonical_query(query);
  const std::string hash =
      payload_sha256.empty() ? s3::sha256_hex("", 0) : payload_sha256;
  request.method = method;
  request.url = config_.scheme + "://" + config_.host + path +
                (query_text.empty() ? "" : "?" + query_text);
  request.connect_timeout_seconds = options_.connect_timeout_seconds;
  request.stall_timeout_seconds = options_.stall_timeout_seconds;
  const int tries = std::max(1, options_.max_attempts);
  for (int attempt = 1;; ++attempt) {
    s3::SignedRequest signed_request{method, config_.host, path, query,
                                     headers};
    s3::sign(signed_request, config_.credentials->current(), config_.region,
             s3::amz_date_now(), hash);
    request.headers = signed_request.headers;
    slots_.acquire();
    HttpResponse r;
    try {
      r = s3::perform(request);
    } catch (...) {
      slots_.release();
      throw;
    }
    slots_.release();
    std::string code;
    if (r.status >= 300) code = s3::xml_first(r.body, "Code");
    if (r.status == 206) expected_body = range_length(r, expected_body);
    if (r.status >= 200 && r.status < 300 && expected_body >= 0 &&
        r.body_bytes != expected_body) {
      r.status = 0;
      r.transport_error = "a body of " + std::to_string(r.body_bytes) +
                          " bytes where " + std::to_string(expected_body) +
                          " were due";
    }
    if ((r.status >= 200 && r.status < 300) ||
        std::find(accepted.begin(), accepted.end(), r.status) !=
            accepted.end()) {
      return r;
    }
    if (!retryable(r, code) || attempt >= tries) {
      fail(method, key, r, code, attempt);
    }
    const double cap =
        std::min(options_.max_backoff_seconds,
                 options_.initial_backoff_seconds *
                     static_cast<double>(1 << std::min(attempt - 1, 20)));
    std::uniform_real_distribution<double> jitter(0, cap);
    std::this_thread::sleep_for(std::chrono::duration<double>(jitter(random)));
    r = HttpResponse();
  }
}

void S3Store::fail(const std::string& method, const std::string& key,
                   const HttpResponse& r, const std::string& code,
                   int tries) const {
  const std::string what = method + " " + shown(key);
  const std::string message = s3::xml_first(r.body, "Message");
  const std::string detail =
      code.empty() ? ""
                   : " " + code + (message.empty() ? "" : " (" + message + ")");
  if (r.status == 0 && r.local_error)
    throw IOError(what + ": " + r.transport_error);
  if (r.status == 403 || r.status == 401) {
    throw PermissionDeniedError("s3://" + bucket_ + ": access denied to " +
                                what + ": HTTP " + std::to_string(r.status) +
                                detail);
  }
  if (r.status == 404) {
    if (code == "NoSuchBucket") {
      throw NotFoundError("s3://" + bucket_ + ": no such bucket (" + what +
                          ")");
    }
    throw NotFoundError(shown(key) + ": no such key");
  }
  const std::string last = r.status == 0
                               ? r.transport_error
                               : "HTTP " + std::to_string(r.status) + detail;
  if (tries > 1) {
    throw IOError(what + " failed after " + std::to_string(tries) +
                  " tries; the last: " + last);
  }
  throw IOError(what + " failed: " + last);
}

bool valid_bucket(const std::string& b) {
  if (b.size() < 3 || b.size() > 63) return false;
  for (char c : b) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-' ||
          c == '.')) {
      return false;
    }
  }
  return b.front() != '-' && b.front() != '.' && b.back() != '-' &&
         b.back() != '.';
}

}  // namespace

bool is_s3_url(const std::string& path) { return path.rfind("s3://", 0) == 0; }

std::shared_ptr<RemoteStore> s3_store(const std::string& url,
                                      const S3Options& options) {
  if (!is_s3_url(url)) {
    throw InvalidArgumentError("'" + url + "' is no s3:// URL");
  }
  const std::string rest = url.substr(5);
  const size_t slash = rest.find('/');
  const std::string bucket = rest.substr(0, slash);
  std::string prefix = slash == std::string::npos ? "" : rest.substr(slash + 1);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  if (!valid_bucket(bucket)) {
    throw InvalidArgumentError(
        "'" + bucket + "' in " + url +
        " is no S3 bucket name (3-63 of a-z, 0-9, '-', '.')");
  }
  if (options.part_size < kLeastPart) {
    throw InvalidArgumentError(
        "S3Options::part_size is below S3's least "
        "part, 5 MiB");
  }
  return std::make_shared<S3Store>(bucket, prefix, options);
}

}  // namespace ckpt
