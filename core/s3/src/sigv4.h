// AWS Signature Version 4 for S3 requests, over OpenSSL's libcrypto.
//
// sign() adds the headers a signed request carries (x-amz-date,
// x-amz-content-sha256, x-amz-security-token when there is a session
// token, Authorization) to a request whose method, path, query and other
// headers are final. Every header given is signed.
#ifndef CKPT_S3_SRC_SIGV4_H_
#define CKPT_S3_SRC_SIGV4_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace ckpt::s3 {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;
};

struct SignedRequest {
  std::string method;  // "GET", "PUT", ...
  std::string host;    // "127.0.0.1:9000", "bucket.s3.amazonaws.com"
  // The path as sent, already URI-encoded ("/bucket/a%20b").
  std::string path;
  // Query parameters, not encoded; a parameter without value has "".
  std::vector<std::pair<std::string, std::string>> query;
  // Headers besides those sign() adds; names in any case.
  std::vector<std::pair<std::string, std::string>> headers;
};

// Hex SHA-256 of `size` bytes.
std::string sha256_hex(const void* data, size_t size);

// Base64 MD5 of `size` bytes (Content-MD5).
std::string md5_base64(const void* data, size_t size);

// RFC 3986 encoding as SigV4 wants it: every byte but A-Z a-z 0-9 - _ . ~
// as %XX; '/' kept when keep_slash.
std::string uri_encode(const std::string& text, bool keep_slash);

// The query string as sent and as signed: sorted, encoded.
std::string canonical_query(
    const std::vector<std::pair<std::string, std::string>>& query);

// Signs `request` for `region` and service "s3" at `amz_date`
// ("20261207T034500Z"), its payload hashing to `payload_sha256` (hex, or
// "UNSIGNED-PAYLOAD"): appends the signing headers to request.headers.
void sign(SignedRequest& request, const Credentials& credentials,
          const std::string& region, const std::string& amz_date,
          const std::string& payload_sha256);

// The current time as x-amz-date wants it.
std::string amz_date_now();

}  // namespace ckpt::s3

#endif  // CKPT_S3_SRC_SIGV4_H_
