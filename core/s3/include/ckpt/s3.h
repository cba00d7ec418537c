// ckpt/s3.h -- a RemoteStore on S3 and S3-compatible storage (library
// ckpt-s3; libckpt links no HTTP library).
//
//   auto store = ckpt::s3_store("s3://bucket/runs/a");
//   ckpt::upload_checkpoint("/ckpt/step_10", *store, "step_10");
//
// Credentials, region and endpoint are found as every AWS tool finds them,
// each from the first place that has it:
//   - credentials: S3Options; AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
//     AWS_SESSION_TOKEN; a web identity token exchanged at STS
//     (AssumeRoleWithWebIdentity: AWS_ROLE_ARN and
//     AWS_WEB_IDENTITY_TOKEN_FILE, or the profile's role_arn and
//     web_identity_token_file; EKS's service accounts); the profile's
//     aws_access_key_id, ... in ~/.aws/credentials
//     (AWS_SHARED_CREDENTIALS_FILE), then in ~/.aws/config
//     (AWS_CONFIG_FILE); a container's credentials endpoint
//     (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI, with
//     AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]; ECS, EKS Pod Identity);
//     the instance metadata service (IMDSv2 at
//     AWS_EC2_METADATA_SERVICE_ENDPOINT, default http://169.254.169.254;
//     off with AWS_EC2_METADATA_DISABLED=true). Credentials from the last
//     three expire: they are fetched when the store is made and again
//     before they expire;
//   - the profile: S3Options::profile, AWS_PROFILE, "default";
//   - region: S3Options, AWS_REGION, AWS_DEFAULT_REGION, the profile's
//     region, us-east-1;
//   - endpoint: S3Options, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the
//     profile's endpoint_url, https://s3.<region>.amazonaws.com (STS's:
//     AWS_ENDPOINT_URL_STS, then the same but S3Options').
// Requests are signed with AWS Signature Version 4 (payloads signed too:
// S3 refuses a body that does not match its hash).
//
// Transfers: a file of more than `part_size` bytes goes up as a multipart
// upload of `part_size` parts and comes down as ranged GETs of that size,
// up to `parallelism` at once. A request that fails on the way (a broken
// or stalled connection, a short body, 500, 502, 503 SlowDown, 504, 429)
// is retried up to `max_attempts` times in all, after a backoff that
// doubles from `initial_backoff_seconds` up to `max_backoff_seconds`, each
// one a random part of that (jitter); then IOError naming the key, the
// tries and the last status. Refused credentials are PermissionDeniedError
// naming the bucket; a missing bucket or key NotFoundError.
#ifndef CKPT_S3_H_
#define CKPT_S3_H_

#include <ckpt/remote.h>

#include <cstdint>
#include <memory>
#include <string>

namespace ckpt {

struct S3Options {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;
  std::string profile;
  std::string region;
  // "http://127.0.0.1:9000", "https://storage.example.com".
  std::string endpoint;
  // Path-style requests (endpoint/bucket/key) instead of virtual-hosted
  // ones (bucket.endpoint/key). kAuto: path-style for any endpoint but
  // AWS's own, and for bucket names with dots.
  enum class Addressing { kAuto, kPath, kVirtual };
  Addressing addressing = Addressing::kAuto;

  int64_t part_size = 8 << 20;  // at least 5 MiB (S3's least part)
  int parallelism = 8;
  int max_attempts = 6;
  double initial_backoff_seconds = 0.1;
  double max_backoff_seconds = 10;
  double connect_timeout_seconds = 10;
  // A transfer that moves no byte for this long is broken off (and tried
  // again).
  double stall_timeout_seconds = 30;
};

// A store over `url`, "s3://bucket" or "s3://bucket/prefix": keys are
// below the prefix. InvalidArgumentError for a malformed URL or bucket
// name; PermissionDeniedError when no credentials are found.
std::shared_ptr<RemoteStore> s3_store(const std::string& url,
                                      const S3Options& options = {});

// Whether `path` is an "s3://" URL.
bool is_s3_url(const std::string& path);

}  // namespace ckpt

#endif  // CKPT_S3_H_
