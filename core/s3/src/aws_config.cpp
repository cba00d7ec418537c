#include "aws_config.h"

#include <ckpt/errors.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>

namespace ckpt::s3 {
namespace {

// Config files beyond this size are not AWS config files.
constexpr std::streamsize kMaxConfigBytes = 1 << 20;

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

std::string trim(const std::string& text) {
  const size_t start = text.find_first_not_of(" \t\r");
  if (start == std::string::npos) return "";
  return text.substr(start, text.find_last_not_of(" \t\r") - start + 1);
}

std::string home_file(const char* variable, const char* default_name) {
  std::string path = env(variable);
  if (!path.empty()) return path;
  const std::string home = env("HOME");
  return home.empty() ? "" : home + "/.aws/" + default_name;
}

IniFile read_ini(const std::string& path) {
  if (path.empty()) return {};
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::string text(static_cast<size_t>(kMaxConfigBytes) + 1, '\0');
  in.read(text.data(), kMaxConfigBytes + 1);
  if (in.gcount() > kMaxConfigBytes) {
    throw InvalidArgumentError(path +
                               " is larger than 1 MiB: not an AWS "
                               "config file");
  }
  text.resize(static_cast<size_t>(in.gcount()));
  return parse_ini(text);
}

const std::map<std::string, std::string>* section(const IniFile& file,
                                                  const std::string& name) {
  const auto it = file.find(name);
  return it == file.end() ? nullptr : &it->second;
}

std::string value_of(const std::map<std::string, std::string>* s,
                     const char* key) {
  if (!s) return "";
  const auto it = s->find(key);
  return it == s->end() ? "" : it->second;
}

// Sets out.scheme and out.host from `endpoint` ("scheme://host[:port]").
void parse_endpoint(const std::string& endpoint, ResolvedConfig& out) {
  const size_t colon = endpoint.find("://");
  out.scheme = colon == std::string::npos ? "" : endpoint.substr(0, colon);
  if (out.scheme != "http" && out.scheme != "https") {
    throw InvalidArgumentError("the S3 endpoint '" + endpoint +
                               "' is no http:// or https:// URL");
  }
  out.host = endpoint.substr(colon + 3);
  while (!out.host.empty() && out.host.back() == '/') out.host.pop_back();
  if (out.host.empty() ||
      out.host.find_first_of("/?#@ ") != std::string::npos) {
    throw InvalidArgumentError("the S3 endpoint '" + endpoint +
                               "' must be scheme://host[:port] alone");
  }
  // A default port is not part of the Host header curl sends.
  for (const char* port : {":80", ":443"}) {
    const std::string p = port;
    if (out.host.size() > p.size() &&
        out.host.compare(out.host.size() - p.size(), p.size(), p) == 0 &&
        (p == ":80") == (out.scheme == "http")) {
      out.host.resize(out.host.size() - p.size());
    }
  }
}

// The profile in use and its sections of the two files (null: none).
struct Profile {
  std::string name;
  std::string credentials_path;
  const std::map<std::string, std::string>* credentials = nullptr;
  const std::map<std::string, std::string>* config = nullptr;
};

// A service's endpoint as the AWS tools find it: AWS_ENDPOINT_URL_<ID>,
// AWS_ENDPOINT_URL, the profile's endpoint_url; "" for AWS's own.
std::string endpoint_of(const char* service_variable, const Profile& p) {
  for (const std::string& e : {env(service_variable), env("AWS_ENDPOINT_URL"),
                               value_of(p.config, "endpoint_url")}) {
    if (!e.empty()) return e;
  }
  return "";
}

// A web identity token exchanged at STS for a role (EKS's service
// accounts): AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE, or the
// profile's role_arn and web_identity_token_file; null when not set.
std::shared_ptr<CredentialProvider> web_identity(const std::string& region,
                                                 const Profile& p) {
  std::string role = env("AWS_ROLE_ARN");
  std::string token_file = env("AWS_WEB_IDENTITY_TOKEN_FILE");
  std::string session = env("AWS_ROLE_SESSION_NAME");
  if (role.empty() || token_file.empty()) {
    role = value_of(p.config, "role_arn");
    token_file = value_of(p.config, "web_identity_token_file");
    session = value_of(p.config, "role_session_name");
  }
  if (role.empty() || token_file.empty()) return nullptr;
  if (session.empty()) {
    session = "ckpt-" + std::to_string(std::time(nullptr));
  }
  std::string sts = endpoint_of("AWS_ENDPOINT_URL_STS", p);
  if (sts.empty()) sts = "https://sts." + region + ".amazonaws.com";
  while (!sts.empty() && sts.back() == '/') sts.pop_back();
  return std::make_shared<CredentialProvider>(
      "STS at " + sts, [sts, role, token_file, session] {
        return fetch_with_web_identity(sts, role, token_file, session);
      });
}

// A container's credentials endpoint (ECS, EKS Pod Identity):
// AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (at the ECS agent) or _FULL_URI,
// with AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE's or _TOKEN's token; null
// when neither URI is set.
std::shared_ptr<CredentialProvider> container_credentials() {
  std::string url = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  url = url.empty() ? env("AWS_CONTAINER_CREDENTIALS_FULL_URI")
                    : "http://169.254.170.2" + url;
  if (url.empty()) return nullptr;
  const std::string token = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
  const std::string token_file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
  return std::make_shared<CredentialProvider>(
      "the container credentials endpoint " + url, [url, token, token_file] {
        return fetch_from_container(url, token, token_file);
      });
}

// The credentials of the first source that has them (ckpt/s3.h lists
// the order).
std::shared_ptr<CredentialProvider> find_credentials(const S3Options& options,
                                                     const std::string& bucket,
                                                     const std::string& region,
                                                     const Profile& p) {
  const std::string looked =
      "no AWS credentials for s3://" + bucket +
      ": set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or profile '" +
      p.name + "' in " +
      (p.credentials_path.empty() ? std::string("~/.aws/credentials")
                                  : p.credentials_path);
  const auto fixed = [&](Credentials c) {
    if (c.secret_access_key.empty()) throw PermissionDeniedError(looked);
    return std::make_shared<CredentialProvider>(std::move(c));
  };
  if (!options.access_key_id.empty()) {
    return fixed({options.access_key_id, options.secret_access_key,
                  options.session_token});
  }
  if (!env("AWS_ACCESS_KEY_ID").empty()) {
    return fixed({env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"),
                  env("AWS_SESSION_TOKEN")});
  }
  if (auto web = web_identity(region, p)) return web;
  for (const auto* s : {p.credentials, p.config}) {
    if (value_of(s, "aws_access_key_id").empty()) continue;
    return fixed({value_of(s, "aws_access_key_id"),
                  value_of(s, "aws_secret_access_key"),
                  value_of(s, "aws_session_token")});
  }
  if (auto container = container_credentials()) return container;
  std::string disabled = env("AWS_EC2_METADATA_DISABLED");
  std::transform(
      disabled.begin(), disabled.end(), disabled.begin(),
      [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (disabled == "true") throw PermissionDeniedError(looked);
  std::string imds = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
  if (imds.empty()) imds = "http://169.254.169.254";
  while (!imds.empty() && imds.back() == '/') imds.pop_back();
  try {
    return std::make_shared<CredentialProvider>(
        "the instance metadata service at " + imds,
        [imds] { return fetch_from_instance_metadata(imds); });
  } catch (const PermissionDeniedError& e) {
    // Not on an instance with a role: say where else to put them.
    throw PermissionDeniedError(looked + "; " + e.what());
  }
}

}  // namespace

IniFile parse_ini(const std::string& text) {
  IniFile out;
  std::string current;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t.front() == '[' && t.back() == ']') {
      current = trim(t.substr(1, t.size() - 2));
      out[current];
      continue;
    }
    const size_t eq = t.find('=');
    // Nested settings ("s3 =" then indented lines) and stray lines are
    // not ckpt's: skipped.
    if (eq == std::string::npos || line[0] == ' ' || line[0] == '\t') continue;
    std::string key = trim(t.substr(0, eq));
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) {
      return static_cast<char>(std::tolower(c));
    });
    out[current][key] = trim(t.substr(eq + 1));
  }
  return out;
}

ResolvedConfig resolve_config(const S3Options& options,
                              const std::string& bucket) {
  Profile p;
  p.name = options.profile;
  if (p.name.empty()) p.name = env("AWS_PROFILE");
  if (p.name.empty()) p.name = "default";
  p.credentials_path = home_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
  const IniFile credentials_file = read_ini(p.credentials_path);
  const IniFile config_file = read_ini(home_file("AWS_CONFIG_FILE", "config"));
  p.credentials = section(credentials_file, p.name);
  p.config =
      section(config_file, p.name == "default" ? p.name : "profile " + p.name);

  ResolvedConfig out;
  out.region = options.region;
  for (const std::string& r :
       {env("AWS_REGION"), env("AWS_DEFAULT_REGION"),
        value_of(p.config, "region"), std::string("us-east-1")}) {
    if (out.region.empty()) out.region = r;
  }

  std::string endpoint = options.endpoint;
  if (endpoint.empty()) endpoint = endpoint_of("AWS_ENDPOINT_URL_S3", p);
  const bool aws = endpoint.empty();
  if (aws) endpoint = "https://s3." + out.region + ".amazonaws.com";
  parse_endpoint(endpoint, out);
  switch (options.addressing) {
    case S3Options::Addressing::kPath:
      out.path_style = true;
      break;
    case S3Options::Addressing::kVirtual:
      out.path_style = false;
      break;
    case S3Options::Addressing::kAuto:
      out.path_style = !aws || bucket.find('.') != std::string::npos;
      break;
  }
  if (!out.path_style) out.host = bucket + "." + out.host;
  // Last: a source may take a few seconds to answer, or to not answer.
  out.credentials = find_credentials(options, bucket, out.region, p);
  return out;
}

}  // namespace ckpt::s3
