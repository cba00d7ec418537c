// Where ckpt-s3 finds credentials: the shared files' profiles, a web
// identity exchanged at STS, a container endpoint and the instance
// metadata service (tests/s3/credential_sources.py plays the last three,
// handing out real temporary credentials that moto's S3 checks), their
// refresh before they expire, and the errors when a source fails.
#include "credentials.h"

#include <ckpt/errors.h>
#include <ckpt/remote.h>
#include <ckpt/s3.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <optional>
#include <thread>

#include "s3/s3_test_util.h"
#include "test_util.h"

using namespace ckpt;
namespace fs = std::filesystem;
using ckpt::test::env;
using ckpt::test::message_of;
using ckpt::test::TempDir;

namespace {

const char* const kCredentialVariables[] = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_SESSION_NAME",
    "AWS_ENDPOINT_URL_STS",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT"};

// The process's credential variables for one test case: none of the
// environment's (no files, no metadata service) but those set, and the
// old ones back at the end.
class CredentialEnv {
 public:
  explicit CredentialEnv(const TempDir& dir) {
    for (const char* name : kCredentialVariables) {
      const char* value = std::getenv(name);
      saved_[name] = value ? std::optional<std::string>(value) : std::nullopt;
      ::unsetenv(name);
    }
    set("AWS_SHARED_CREDENTIALS_FILE", (dir / "no-credentials").string());
    set("AWS_CONFIG_FILE", (dir / "no-config").string());
    set("AWS_EC2_METADATA_DISABLED", "true");
    ckpt::test::http_json("DELETE", env("CKPT_TEST_CREDENTIALS") + "/control",
                          "");
  }
  ~CredentialEnv() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }
  void set(const char* name, const std::string& value) {
    ::setenv(name, value.c_str(), 1);
  }
  void unset(const char* name) { ::unsetenv(name); }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

std::shared_ptr<RemoteStore> store() {
  S3Options options = ckpt::test::fast_retries();
  options.endpoint = env("CKPT_TEST_S3_ENDPOINT");
  return s3_store("s3://" + env("CKPT_TEST_S3_BUCKET") + "/creds-" +
                      ckpt::test::fresh_prefix(),
                  options);
}

// A write and a read with the store's credentials, which moto checks.
void round_trip(RemoteStore& s, const std::string& key) {
  REQUIRE(s.put_if_absent(key, "bytes of " + key));
  CHECK(s.get(key) == "bytes of " + key);
}

// How many credentials each fake source handed out.
nlohmann::json handed_out() {
  return ckpt::test::http_json("GET", env("CKPT_TEST_CREDENTIALS") + "/control",
                               "");
}

void write(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

}  // namespace

TEST_CASE("credentials from a profile of the shared files",
          "[s3][credentials]") {
  TempDir dir;
  const std::string id = env("AWS_ACCESS_KEY_ID");
  const std::string secret = env("AWS_SECRET_ACCESS_KEY");
  CredentialEnv e(dir);
  write(dir / "credentials",
        "[default]\naws_access_key_id = AKIDWRONG\n"
        "aws_secret_access_key = wrong\n\n[train]\n"
        "aws_access_key_id = " +
            id + "\naws_secret_access_key = " + secret + "\n");
  write(dir / "config", "[profile train]\nregion = us-east-1\n");
  e.set("AWS_SHARED_CREDENTIALS_FILE", (dir / "credentials").string());
  e.set("AWS_CONFIG_FILE", (dir / "config").string());
  e.set("AWS_PROFILE", "train");
  round_trip(*store(), "profile");
  // The default profile's key is unknown to the server.
  e.unset("AWS_PROFILE");
  CHECK_THAT(message_of<PermissionDeniedError>([] { store()->list(""); }),
             Catch::Contains("InvalidAccessKeyId"));
}

TEST_CASE("credentials from the instance metadata service",
          "[s3][credentials]") {
  TempDir dir;
  CredentialEnv e(dir);
  e.unset("AWS_EC2_METADATA_DISABLED");
  e.set("AWS_EC2_METADATA_SERVICE_ENDPOINT", env("CKPT_TEST_CREDENTIALS"));
  auto s = store();
  round_trip(*s, "imds");
  CHECK(handed_out()["imds"] == 1);  // fetched once, kept while valid
  round_trip(*s, "imds-again");
  CHECK(handed_out()["imds"] == 1);
}

TEST_CASE("credentials are fetched again before they expire",
          "[s3][credentials]") {
  TempDir dir;
  CredentialEnv e(dir);
  e.unset("AWS_EC2_METADATA_DISABLED");
  e.set("AWS_EC2_METADATA_SERVICE_ENDPOINT", env("CKPT_TEST_CREDENTIALS"));
  // Credentials that say they last 4 s: fetched again after half of that.
  ckpt::test::http_json("POST", env("CKPT_TEST_CREDENTIALS") + "/control",
                        R"({"lifetime": 4})");
  auto s = store();
  round_trip(*s, "first");
  CHECK(handed_out()["imds"] == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  round_trip(*s, "second");
  CHECK(handed_out()["imds"] == 2);
}

TEST_CASE("credentials from a container endpoint", "[s3][credentials]") {
  TempDir dir;
  CredentialEnv e(dir);
  const std::string url =
      env("CKPT_TEST_CREDENTIALS") + "/container/credentials";
  e.set("AWS_CONTAINER_CREDENTIALS_FULL_URI", url);
  write(dir / "token", "test-container-token\n");
  e.set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", (dir / "token").string());
  round_trip(*store(), "container");
  CHECK(handed_out()["container"] == 1);
  // A wrong token: the endpoint's refusal, named.
  e.unset("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
  e.set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong");
  CHECK_THAT(message_of<PermissionDeniedError>([] { store(); }),
             Catch::Contains("container credentials endpoint " + url) &&
                 Catch::Contains("HTTP 401"));
  // Plain http to a host that is not loopback nor the container agent.
  e.set("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://192.0.2.1/creds");
  CHECK_THAT(message_of<PermissionDeniedError>([] { store(); }),
             Catch::Contains("use https"));
  // A header injected through the token, or through the credentials
  // the source answers with, is refused.
  e.set("AWS_CONTAINER_CREDENTIALS_FULL_URI", url);
  e.set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "a\r\nX-Injected: 1");
  CHECK_THAT(message_of<PermissionDeniedError>([] { store(); }),
             Catch::Contains("control characters"));
  e.set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "test-container-token");
  ckpt::test::http_json("POST", env("CKPT_TEST_CREDENTIALS") + "/control",
                        R"({"corrupt": true})");
  CHECK_THAT(message_of<PermissionDeniedError>([] { store(); }),
             Catch::Contains("credentials holding control characters"));
}

TEST_CASE("credentials from a web identity token at STS", "[s3][credentials]") {
  TempDir dir;
  CredentialEnv e(dir);
  write(dir / "token", "test-web-identity-token");
  e.set("AWS_WEB_IDENTITY_TOKEN_FILE", (dir / "token").string());
  e.set("AWS_ROLE_ARN", env("CKPT_TEST_S3_ROLE_ARN"));
  e.set("AWS_ENDPOINT_URL_STS", env("CKPT_TEST_CREDENTIALS") + "/sts");
  round_trip(*store(), "web-identity");
  CHECK(handed_out()["sts"] == 1);
  // STS refuses another token: its code and message, named.
  write(dir / "token", "not-the-token");
  CHECK_THAT(message_of<PermissionDeniedError>([] { store(); }),
             Catch::Contains("AssumeRoleWithWebIdentity of " +
                             env("CKPT_TEST_S3_ROLE_ARN")) &&
                 Catch::Contains("InvalidIdentityToken"));
  write(dir / "token", "");
  CHECK_THAT(message_of<PermissionDeniedError>([] { store(); }),
             Catch::Contains("is empty"));
}

TEST_CASE("without credentials anywhere, the error says where to put them",
          "[s3][credentials]") {
  TempDir dir;
  CredentialEnv e(dir);
  const std::string bucket = env("CKPT_TEST_S3_BUCKET");
  CHECK_THAT(message_of<PermissionDeniedError>([] { store(); }),
             Catch::Contains("no AWS credentials for s3://" + bucket) &&
                 Catch::Contains("AWS_ACCESS_KEY_ID"));
  // A metadata service that does not answer: named, after its short tries.
  e.unset("AWS_EC2_METADATA_DISABLED");
  e.set("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9");
  CHECK_THAT(message_of<PermissionDeniedError>([] { store(); }),
             Catch::Contains("AWS_ACCESS_KEY_ID") &&
                 Catch::Contains("instance metadata service at "
                                 "http://127.0.0.1:9"));
}

TEST_CASE("expirations are read as the sources write them",
          "[s3][credentials]") {
  using s3::parse_expiration;
  const auto t = parse_expiration("2026-12-07T19:00:00Z");
  REQUIRE(t);
  CHECK(std::chrono::system_clock::to_time_t(*t) == 1796670000);
  CHECK(parse_expiration("2026-12-07T19:00:00.123456Z") == t);
  CHECK(parse_expiration("2026-12-07T19:00:00+00:00") == t);
  CHECK_FALSE(parse_expiration("2026-12-07 19:00:00"));
  CHECK_FALSE(parse_expiration("2026-13-07T19:00:00Z"));
  CHECK_FALSE(parse_expiration("2026-12-07T19:00:00+02:00"));
  CHECK_FALSE(parse_expiration(""));
}
