#include "sigv4.h"

#include <ckpt/errors.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>

namespace ckpt::s3 {
namespace {

std::string hex(const unsigned char* bytes, size_t size) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out += digits[bytes[i] >> 4];
    out += digits[bytes[i] & 15];
  }
  return out;
}

std::string digest(const EVP_MD* md, const void* data, size_t size) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(data, size, out, &length, md, nullptr) != 1) {
    throw InternalError("libcrypto could not hash a request");
  }
  return std::string(reinterpret_cast<char*>(out), length);
}

std::string hmac(const std::string& key, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(),
            out, &length)) {
    throw InternalError("libcrypto could not sign a request");
  }
  return std::string(reinterpret_cast<char*>(out), length);
}

std::string lower(std::string text) {
  for (char& c : text)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// A header value as SigV4 signs it: trimmed, inner runs of spaces as one.
std::string trimmed(const std::string& value) {
  std::string out;
  bool space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

}  // namespace

std::string sha256_hex(const void* data, size_t size) {
  const std::string d = digest(EVP_sha256(), data, size);
  return hex(reinterpret_cast<const unsigned char*>(d.data()), d.size());
}

std::string md5_base64(const void* data, size_t size) {
  const std::string d = digest(EVP_md5(), data, size);
  unsigned char out[32];
  const int n =
      EVP_EncodeBlock(out, reinterpret_cast<const unsigned char*>(d.data()),
                      static_cast<int>(d.size()));
  return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n));
}

std::string uri_encode(const std::string& text, bool keep_slash) {
  static const char digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}

std::string canonical_query(
    const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  for (const auto& [k, v] : query) {
    encoded.emplace_back(uri_encode(k, false), uri_encode(v, false));
  }
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [k, v] : encoded) {
    if (!out.empty()) out += '&';
    out += k + "=" + v;
  }
  return out;
}

void sign(SignedRequest& request, const Credentials& credentials,
          const std::string& region, const std::string& amz_date,
          const std::string& payload_sha256) {
  request.headers.emplace_back("host", request.host);
  request.headers.emplace_back("x-amz-date", amz_date);
  request.headers.emplace_back("x-amz-content-sha256", payload_sha256);
  if (!credentials.session_token.empty()) {
    request.headers.emplace_back("x-amz-security-token",
                                 credentials.session_token);
  }
  std::map<std::string, std::string> headers;
  for (const auto& [name, value] : request.headers) {
    std::string& slot = headers[lower(name)];
    slot += (slot.empty() ? "" : ",") + trimmed(value);
  }
  std::string canonical_headers, signed_headers;
  for (const auto& [name, value] : headers) {
    canonical_headers += name + ":" + value + "\n";
    signed_headers += (signed_headers.empty() ? "" : ";") + name;
  }
  const std::string canonical_request = request.method + "\n" + request.path +
                                        "\n" + canonical_query(request.query) +
                                        "\n" + canonical_headers + "\n" +
                                        signed_headers + "\n" + payload_sha256;
  const std::string day = amz_date.substr(0, 8);
  const std::string scope = day + "/" + region + "/s3/aws4_request";
  const std::string string_to_sign =
      "AWS4-HMAC-SHA256\n" + amz_date + "\n" + scope + "\n" +
      sha256_hex(canonical_request.data(), canonical_request.size());
  const std::string key =
      hmac(hmac(hmac(hmac("AWS4" + credentials.secret_access_key, day), region),
                "s3"),
           "aws4_request");
  const std::string signature = hmac(key, string_to_sign);
  request.headers.emplace_back(
      "Authorization",
      "AWS4-HMAC-SHA256 Credential=" + credentials.access_key_id + "/" + scope +
          ", SignedHeaders=" + signed_headers + ", Signature=" +
          hex(reinterpret_cast<const unsigned char*>(signature.data()),
              signature.size()));
}

std::string amz_date_now() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[20];
  std::strftime(text, sizeof text, "%Y%m%dT%H%M%SZ", &utc);
  return text;
}

}  // namespace ckpt::s3
