// Signs the requests of a JSON table (stdin) with ckpt-s3's SigV4 signer
// and prints each one's Authorization header, one per line: the C++ half
// of sigv4_check.py, which compares them with botocore's.
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "sigv4.h"

int main() {
  const std::string text((std::istreambuf_iterator<char>(std::cin)),
                         std::istreambuf_iterator<char>());
  const nlohmann::json table = nlohmann::json::parse(text);
  for (const nlohmann::json& c : table) {
    ckpt::s3::SignedRequest request;
    request.method = c["method"];
    request.host = c["host"];
    request.path = c["path"];
    for (const auto& q : c["query"]) request.query.emplace_back(q[0], q[1]);
    for (const auto& h : c["headers"]) request.headers.emplace_back(h[0], h[1]);
    const std::string hex_body = c["body_hex"];
    std::string body;
    for (size_t i = 0; i + 1 < hex_body.size(); i += 2) {
      body += static_cast<char>(std::stoi(hex_body.substr(i, 2), nullptr, 16));
    }
    const ckpt::s3::Credentials credentials{c["access_key"], c["secret_key"],
                                            c["token"]};
    ckpt::s3::sign(request, credentials, c["region"], c["amz_date"],
                   ckpt::s3::sha256_hex(body.data(), body.size()));
    for (const auto& [name, value] : request.headers) {
      if (name == "Authorization") std::cout << value << "\n";
    }
  }
  return 0;
}
