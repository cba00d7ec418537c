// Where an S3 store's credentials, region and endpoint come from, as every
// AWS tool finds them (ckpt/s3.h lists the order).
#ifndef CKPT_S3_SRC_AWS_CONFIG_H_
#define CKPT_S3_SRC_AWS_CONFIG_H_

#include <ckpt/s3.h>

#include <map>
#include <memory>
#include <string>

#include "credentials.h"

namespace ckpt::s3 {

struct ResolvedConfig {
  std::shared_ptr<CredentialProvider> credentials;
  std::string region;
  std::string scheme;  // "http" or "https"
  std::string host;    // "127.0.0.1:9000", "s3.us-east-1.amazonaws.com"
  bool path_style = true;
};

// InvalidArgumentError for a malformed endpoint; PermissionDeniedError
// when no credentials are found (naming where it looked), or when the
// source the environment names (a web identity, a container endpoint)
// gives none. Credentials a source hands out are fetched once here.
ResolvedConfig resolve_config(const S3Options& options,
                              const std::string& bucket);

// The sections of an INI file (~/.aws/config, credentials): section name
// -> key -> value; keys lower-cased, values trimmed.
using IniFile = std::map<std::string, std::map<std::string, std::string>>;
IniFile parse_ini(const std::string& text);

}  // namespace ckpt::s3

#endif  // CKPT_S3_SRC_AWS_CONFIG_H_
