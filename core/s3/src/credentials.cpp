#include "credentials.h"

#include <ckpt/errors.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>
#include <vector>

#include "http.h"
#include "xml.h"

namespace ckpt::s3 {
namespace {

// The sources answer in a few hundred bytes; a token file holds a JWT.
constexpr int64_t kMaxAnswerBytes = 64 << 10;
constexpr std::streamsize kMaxTokenBytes = 1 << 20;
constexpr int kTries = 3;

[[noreturn]] void refuse(const std::string& source, const std::string& why) {
  throw PermissionDeniedError("no AWS credentials from " + source + ": " + why);
}

std::string shown(const HttpResponse& r) {
  if (r.status == 0) return "no answer (" + r.transport_error + ")";
  std::string body = r.body.substr(0, 200);
  std::replace_if(
      body.begin(), body.end(),
      [](unsigned char c) { return !std::isprint(c); }, ' ');
  return "HTTP " + std::to_string(r.status) + (body.empty() ? "" : ": ") + body;
}

// One request to a credential source: short timeouts (on a machine
// outside AWS the metadata address answers nothing), a few tries on a
// broken exchange or a 5xx answer.
HttpResponse ask(const std::string& method, const std::string& url,
                 std::vector<std::pair<std::string, std::string>> headers) {
  HttpResponse r;
  for (int attempt = 1; attempt <= kTries; ++attempt) {
    HttpRequest request;
    request.method = method;
    request.url = url;
    request.headers = headers;
    request.max_body = kMaxAnswerBytes;
    request.connect_timeout_seconds = 1;
    request.stall_timeout_seconds = 2;
    request.total_timeout_seconds = 5;
    if (method == "PUT") request.body = "";
    r = perform(request);
    if (r.local_error || (r.status != 0 && r.status < 500)) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(100 * attempt));
  }
  return r;
}

// Whether `text` may go into a header: no control characters.
bool printable(const std::string& text) {
  return std::all_of(text.begin(), text.end(),
                     [](unsigned char c) { return c >= 0x20 && c != 0x7f; });
}

// `c` as a source gave it: refused unless its parts can go into headers.
TimedCredentials checked(const std::string& source, TimedCredentials c) {
  const Credentials& k = c.credentials;
  if (k.access_key_id.empty() || k.secret_access_key.empty()) {
    refuse(source, "an answer without credentials");
  }
  if (!printable(k.access_key_id) || !printable(k.session_token)) {
    refuse(source, "credentials holding control characters");
  }
  return c;
}

const std::string* string_field(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_string() ||
      it->get_ref<const std::string&>().empty()) {
    return nullptr;
  }
  return &it->get_ref<const std::string&>();
}

// The JSON answer of the metadata service and container endpoints.
TimedCredentials from_json(const std::string& source, const HttpResponse& r) {
  const nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
  if (!j.is_object()) refuse(source, "an answer that is no JSON object");
  if (const std::string* code = string_field(j, "Code");
      code && *code != "Success") {
    refuse(source, "the answer's Code is " + *code);
  }
  const std::string* id = string_field(j, "AccessKeyId");
  const std::string* secret = string_field(j, "SecretAccessKey");
  TimedCredentials out;
  out.credentials = {id ? *id : "", secret ? *secret : "", ""};
  if (const std::string* token = string_field(j, "Token")) {
    out.credentials.session_token = *token;
  }
  if (const std::string* expiration = string_field(j, "Expiration")) {
    out.expiration = parse_expiration(*expiration);
    if (!out.expiration) {
      refuse(source, "an Expiration that is no UTC time: " + *expiration);
    }
  }
  return checked(source, std::move(out));
}

// The host of an http(s) URL, without port or brackets.
std::string host_of(const std::string& url) {
  const size_t start = url.find("://");
  if (start == std::string::npos) return "";
  std::string rest = url.substr(start + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (rest.find('@') != std::string::npos) return "";  // no userinfo
  if (!rest.empty() && rest[0] == '[') {
    const size_t end = rest.find(']');
    return end == std::string::npos ? "" : rest.substr(1, end - 1);
  }
  return rest.substr(0, rest.find(':'));
}

// A token file's text without its trailing white space.
std::string read_token(const std::string& source, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) refuse(source, "cannot read the token file " + path);
  std::string text(static_cast<size_t>(kMaxTokenBytes) + 1, '\0');
  in.read(text.data(), kMaxTokenBytes + 1);
  if (in.gcount() > kMaxTokenBytes) {
    refuse(source, "the token file " + path + " is larger than 1 MiB");
  }
  text.resize(static_cast<size_t>(in.gcount()));
  while (!text.empty() &&
         std::isspace(static_cast<unsigned char>(text.back()))) {
    text.pop_back();
  }
  if (text.empty()) refuse(source, "the token file " + path + " is empty");
  return text;
}

bool container_host_allowed_over_http(const std::string& host) {
  return host.rfind("127.", 0) == 0 || host == "localhost" || host == "::1" ||
         host == "169.254.170.2" || host == "169.254.170.23" ||
         host == "fd00:ec2::23";
}

}  // namespace

CredentialProvider::CredentialProvider(std::string source, Fetch fetch)
    : source_(std::move(source)), fetch_(std::move(fetch)) {
  held_ = fetch_();  // the first answer now: a missing source fails here
  fetched_at_ = Clock::now();
}

CredentialProvider::CredentialProvider(Credentials fixed)
    : source_("the given credentials") {
  held_.credentials = std::move(fixed);
}

Credentials CredentialProvider::current() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!fetch_ || !held_.expiration) return held_.credentials;
  const Clock::time_point now = Clock::now();
  // Before kRefreshBefore is left, or half their life for short-lived
  // ones, so that they are not fetched again at every request.
  const Clock::duration margin = std::min<Clock::duration>(
      kRefreshBefore, (*held_.expiration - fetched_at_) / 2);
  if (now < *held_.expiration - margin) return held_.credentials;
  try {
    held_ = fetch_();
    fetched_at_ = now;
  } catch (const Error&) {
    if (now < *held_.expiration) return held_.credentials;  // still valid
    throw;
  }
  return held_.credentials;
}

std::optional<Clock::time_point> parse_expiration(const std::string& text) {
  std::tm t{};
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &t.tm_year,
                  &t.tm_mon, &t.tm_mday, &t.tm_hour, &t.tm_min, &t.tm_sec,
                  &consumed) != 6 ||
      consumed != 19) {
    return std::nullopt;
  }
  std::string rest = text.substr(19);
  if (!rest.empty() && rest[0] == '.') {
    const size_t digits = rest.find_first_not_of("0123456789", 1);
    rest = digits == std::string::npos ? "" : rest.substr(digits);
  }
  if (rest != "Z" && rest != "+00:00") return std::nullopt;
  if (t.tm_mon < 1 || t.tm_mon > 12 || t.tm_mday < 1 || t.tm_mday > 31 ||
      t.tm_hour > 23 || t.tm_min > 59 || t.tm_sec > 60) {
    return std::nullopt;
  }
  t.tm_year -= 1900;
  t.tm_mon -= 1;
  const time_t seconds = timegm(&t);
  if (seconds == static_cast<time_t>(-1)) return std::nullopt;
  return Clock::from_time_t(seconds);
}

TimedCredentials fetch_from_instance_metadata(const std::string& endpoint) {
  const std::string source = "the instance metadata service at " + endpoint;
  const HttpResponse token =
      ask("PUT", endpoint + "/latest/api/token",
          {{"X-aws-ec2-metadata-token-ttl-seconds", "21600"}});
  if (token.status != 200 || token.body.empty() || !printable(token.body)) {
    refuse(source, "no session token (" + shown(token) + ")");
  }
  const std::vector<std::pair<std::string, std::string>> with_token = {
      {"X-aws-ec2-metadata-token", token.body}};
  const std::string roles_url =
      endpoint + "/latest/meta-data/iam/security-credentials/";
  const HttpResponse roles = ask("GET", roles_url, with_token);
  if (roles.status == 404) refuse(source, "the instance has no IAM role");
  if (roles.status != 200) refuse(source, shown(roles));
  const std::string role = roles.body.substr(0, roles.body.find('\n'));
  // IAM role names: letters, digits and +=,.@_- only, up to 64.
  if (role.empty() || role.size() > 64 ||
      !std::all_of(role.begin(), role.end(), [](unsigned char c) {
        return std::isalnum(c) ||
               std::string("+=,.@_-").find(static_cast<char>(c)) !=
                   std::string::npos;
      })) {
    refuse(source, "an answer that names no IAM role");
  }
  const HttpResponse answer = ask("GET", roles_url + role, with_token);
  if (answer.status != 200) refuse(source, shown(answer));
  return from_json(source + " (role " + role + ")", answer);
}

TimedCredentials fetch_from_container(const std::string& url,
                                      const std::string& token,
                                      const std::string& token_file) {
  const std::string source = "the container credentials endpoint " + url;
  const std::string host = host_of(url);
  const bool https = url.rfind("https://", 0) == 0;
  if (host.empty() || (!https && (url.rfind("http://", 0) != 0 ||
                                  !container_host_allowed_over_http(host)))) {
    refuse(source,
           "plain http is for loopback and the container agent's "
           "addresses only; use https");
  }
  const std::string authorization =
      token_file.empty() ? token : read_token(source, token_file);
  if (!printable(authorization)) {
    refuse(source, "the authorization token holds control characters");
  }
  std::vector<std::pair<std::string, std::string>> headers;
  if (!authorization.empty()) {
    headers.emplace_back("Authorization", authorization);
  }
  const HttpResponse answer = ask("GET", url, headers);
  if (answer.status != 200) refuse(source, shown(answer));
  return from_json(source, answer);
}

TimedCredentials fetch_with_web_identity(const std::string& sts_endpoint,
                                         const std::string& role_arn,
                                         const std::string& token_file,
                                         const std::string& session_name) {
  const std::string source = "STS at " + sts_endpoint +
                             " (AssumeRoleWithWebIdentity of " + role_arn + ")";
  const std::string jwt = read_token(source, token_file);
  const std::string query =
      canonical_query({{"Action", "AssumeRoleWithWebIdentity"},
                       {"RoleArn", role_arn},
                       {"RoleSessionName", session_name},
                       {"Version", "2011-06-15"},
                       {"WebIdentityToken", jwt}});
  const HttpResponse answer = ask("GET", sts_endpoint + "/?" + query, {});
  if (answer.status != 200) {
    const std::string message = xml_first(answer.body, "Message");
    refuse(source, answer.status == 0 || message.empty()
                       ? shown(answer)
                       : "HTTP " + std::to_string(answer.status) + " " +
                             xml_first(answer.body, "Code") + ": " + message);
  }
  const std::string block = xml_first(answer.body, "Credentials");
  TimedCredentials out;
  out.credentials = {xml_first(block, "AccessKeyId"),
                     xml_first(block, "SecretAccessKey"),
                     xml_first(block, "SessionToken")};
  const std::string expiration = xml_first(block, "Expiration");
  out.expiration = parse_expiration(expiration);
  if (!out.expiration) {
    refuse(source, "an Expiration that is no UTC time: " + expiration);
  }
  return checked(source, std::move(out));
}

}  // namespace ckpt::s3
