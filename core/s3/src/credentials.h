// Credentials that expire, and where a machine in AWS gets them: a web
// identity token exchanged at STS (EKS's IAM roles for service accounts),
// a container's credentials endpoint (ECS, EKS Pod Identity) and the
// instance metadata service (EC2, IMDSv2). ckpt/s3.h lists the order.
#ifndef CKPT_S3_SRC_CREDENTIALS_H_
#define CKPT_S3_SRC_CREDENTIALS_H_

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "sigv4.h"

namespace ckpt::s3 {

using Clock = std::chrono::system_clock;

struct TimedCredentials {
  Credentials credentials;
  std::optional<Clock::time_point> expiration;  // none: they do not expire
};

// The credentials a store signs with: fixed ones, or ones fetched from a
// source and fetched again before they expire (kRefreshBefore ahead), by
// whichever thread asks first. A failed refresh keeps the old credentials
// while they are still valid and retries at the next request; past their
// expiration it throws what the source threw.
class CredentialProvider {
 public:
  using Fetch = std::function<TimedCredentials()>;
  static constexpr std::chrono::minutes kRefreshBefore{5};

  // `source` names the source in errors ("the instance metadata service
  // at http://169.254.169.254").
  CredentialProvider(std::string source, Fetch fetch);
  explicit CredentialProvider(Credentials fixed);

  Credentials current();
  const std::string& source() const { return source_; }

 private:
  std::string source_;
  Fetch fetch_;
  std::mutex mutex_;
  TimedCredentials held_;
  Clock::time_point fetched_at_;
};

// "2026-12-07T19:00:00Z" (also with fractions of a second or a +00:00
// offset), as the sources give expirations; nullopt when malformed.
std::optional<Clock::time_point> parse_expiration(const std::string& text);

// The fetchers. Each throws PermissionDeniedError naming its source and
// what went wrong (no answer, a refusal, an answer without credentials).

// IMDSv2 at `endpoint` ("http://169.254.169.254"): a session token, the
// instance role's name, its credentials.
TimedCredentials fetch_from_instance_metadata(const std::string& endpoint);

// A container credentials endpoint: GET `url`, with the token of
// `token_file` (read at each call: it rotates), else `token`, as the
// Authorization header when there is one. Plain http only to a loopback
// address or the container agent's (169.254.170.2, 169.254.170.23).
TimedCredentials fetch_from_container(const std::string& url,
                                      const std::string& token,
                                      const std::string& token_file);

// STS AssumeRoleWithWebIdentity at `sts_endpoint` for `role_arn`, with the
// token read from `token_file` at each call (the token rotates).
TimedCredentials fetch_with_web_identity(const std::string& sts_endpoint,
                                         const std::string& role_arn,
                                         const std::string& token_file,
                                         const std::string& session_name);

}  // namespace ckpt::s3

#endif  // CKPT_S3_SRC_CREDENTIALS_H_
