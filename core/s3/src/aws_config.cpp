#include "aws_config.h"

#include <ckpt/errors.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
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
  std::string profile = options.profile;
  if (profile.empty()) profile = env("AWS_PROFILE");
  if (profile.empty()) profile = "default";
  const std::string credentials_path =
      home_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
  const std::string config_path = home_file("AWS_CONFIG_FILE", "config");
  const IniFile credentials_file = read_ini(credentials_path);
  const IniFile config_file = read_ini(config_path);
  const auto* from_credentials = section(credentials_file, profile);
  const auto* from_config = section(
      config_file, profile == "default" ? profile : "profile " + profile);

  ResolvedConfig out;
  Credentials& c = out.credentials;
  if (!options.access_key_id.empty()) {
    c = {options.access_key_id, options.secret_access_key,
         options.session_token};
  } else if (!env("AWS_ACCESS_KEY_ID").empty()) {
    c = {env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"),
         env("AWS_SESSION_TOKEN")};
  } else {
    for (const auto* s : {from_credentials, from_config}) {
      if (value_of(s, "aws_access_key_id").empty()) continue;
      c = {value_of(s, "aws_access_key_id"),
           value_of(s, "aws_secret_access_key"),
           value_of(s, "aws_session_token")};
      break;
    }
  }
  if (c.access_key_id.empty() || c.secret_access_key.empty()) {
    throw PermissionDeniedError(
        "no AWS credentials for s3://" + bucket +
        ": set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or profile '" +
        profile + "' in " +
        (credentials_path.empty() ? std::string("~/.aws/credentials")
                                  : credentials_path));
  }

  out.region = options.region;
  for (const std::string& r :
       {env("AWS_REGION"), env("AWS_DEFAULT_REGION"),
        value_of(from_config, "region"), std::string("us-east-1")}) {
    if (out.region.empty()) out.region = r;
  }

  std::string endpoint = options.endpoint;
  for (const std::string& e :
       {env("AWS_ENDPOINT_URL_S3"), env("AWS_ENDPOINT_URL"),
        value_of(from_config, "endpoint_url")}) {
    if (endpoint.empty()) endpoint = e;
  }
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
  return out;
}

}  // namespace ckpt::s3
