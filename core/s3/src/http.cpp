#include "http.h"

#include <ckpt/errors.h>
#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>

namespace ckpt::s3 {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw InternalError("libcurl failed to initialize");
    }
  });
}

// This thread's handle: kept between requests so that its connections are
// reused.
CURL* thread_handle() {
  struct Handle {
    CURL* curl = nullptr;
    ~Handle() {
      if (curl) curl_easy_cleanup(curl);
    }
  };
  thread_local Handle handle;
  if (!handle.curl) {
    global_init();
    handle.curl = curl_easy_init();
    if (!handle.curl) throw InternalError("libcurl could not make a handle");
  } else {
    curl_easy_reset(handle.curl);
  }
  return handle.curl;
}

struct Exchange {
  const HttpRequest* request;
  HttpResponse* response;
  size_t sent = 0;
  bool sink_failed = false;
  std::string sink_error;
};

size_t on_read(char* buffer, size_t size, size_t count, void* user) {
  auto* x = static_cast<Exchange*>(user);
  const size_t n = std::min(size * count, x->request->body_size - x->sent);
  std::copy_n(x->request->body + x->sent, n, buffer);
  x->sent += n;
  return n;
}

size_t on_write(char* data, size_t size, size_t count, void* user) {
  auto* x = static_cast<Exchange*>(user);
  const size_t n = size * count;
  HttpResponse& r = *x->response;
  const bool to_fd = x->request->fd >= 0 && !r.headers.empty() &&
                     r.status >= 200 && r.status < 300;
  if (to_fd) {
    size_t done = 0;
    while (done < n) {
      const ssize_t w = ::pwrite(
          x->request->fd, data + done, n - done,
          x->request->fd_offset + r.body_bytes + static_cast<int64_t>(done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        x->sink_failed = true;
        x->sink_error =
            std::string("cannot write the file: ") + std::strerror(errno);
        return 0;
      }
      done += static_cast<size_t>(w);
    }
  } else {
    if (static_cast<int64_t>(r.body.size() + n) > x->request->max_body) {
      x->sink_failed = true;
      x->sink_error = "the response is larger than " +
                      std::to_string(x->request->max_body) + " bytes";
      return 0;
    }
    r.body.append(data, n);
  }
  r.body_bytes += static_cast<int64_t>(n);
  return n;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* x = static_cast<Exchange*>(user);
  const size_t n = size * count;
  std::string line(data, n);
  if (line.rfind("HTTP/", 0) == 0) {
    // A new response (after a 100 Continue or a redirect): start over.
    x->response->headers.clear();
    const size_t space = line.find(' ');
    x->response->status =
        space == std::string::npos ? 0 : std::atol(line.c_str() + space + 1);
    x->response->headers[":status"] = std::to_string(x->response->status);
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string::npos) return n;
  std::string name = line.substr(0, colon);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) {
    return static_cast<char>(std::tolower(c));
  });
  std::string value = line.substr(colon + 1);
  const size_t start = value.find_first_not_of(" \t");
  const size_t end = value.find_last_not_of(" \t\r\n");
  value =
      start == std::string::npos ? "" : value.substr(start, end - start + 1);
  x->response->headers[name] = value;
  return n;
}

}  // namespace

std::string HttpResponse::header(const std::string& name) const {
  const auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

HttpResponse perform(const HttpRequest& request) {
  CURL* curl = thread_handle();
  HttpResponse response;
  Exchange exchange{&request, &response, 0, false, ""};
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(
      nullptr, &curl_slist_free_all);
  for (const auto& [name, value] : request.headers) {
    curl_slist* next =
        curl_slist_append(headers.get(), (name + ": " + value).c_str());
    if (!next) throw InternalError("out of memory building a request");
    headers.release();
    headers.reset(next);
  }
  // curl adds these unless told not to; S3 wants neither.
  for (const char* h : {"Expect:", "Accept:"}) {
    curl_slist* next = curl_slist_append(headers.get(), h);
    if (!next) throw InternalError("out of memory building a request");
    headers.release();
    headers.reset(next);
  }
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(request.connect_timeout_seconds * 1000));
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(
      curl, CURLOPT_LOW_SPEED_TIME,
      std::max(1L, static_cast<long>(request.stall_timeout_seconds)));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(request.total_timeout_seconds * 1000));
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &exchange);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &on_write);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &exchange);
  if (request.method == "HEAD") curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  if (request.body || request.method == "PUT" || request.method == "POST") {
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, &on_read);
    curl_easy_setopt(curl, CURLOPT_READDATA, &exchange);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE,
                     static_cast<curl_off_t>(request.body_size));
  }
  const CURLcode code = curl_easy_perform(curl);
  if (code != CURLE_OK) {
    response.status = 0;
    response.local_error = exchange.sink_failed;
    response.transport_error =
        exchange.sink_failed ? exchange.sink_error : curl_easy_strerror(code);
    return response;
  }
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  response.status = status;
  return response;
}

}  // namespace ckpt::s3
