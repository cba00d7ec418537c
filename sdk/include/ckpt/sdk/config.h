// ckpt/sdk/config.h -- reading a handler instance's configuration.
//
// A configuration is a JSON object as text (`{}` when none was given). This
// header uses nlohmann/json (header-only); include it only in plugins that
// have it.
#ifndef CKPT_SDK_CONFIG_H_
#define CKPT_SDK_CONFIG_H_

#include <ckpt/abi.h>
#include <ckpt/sdk/error.h>

#include <nlohmann/json.hpp>
#include <string>

namespace ckpt::sdk {

// The "filename" of a configuration, or `default_name` when it has none.
// Throws CKPT_ERROR_INVALID_ARGUMENT, naming `handler` (e.g. "json
// handler"), unless the configuration is a JSON object and the filename a
// file inside the handler's folder: a non-empty string without '/', not "."
// or "..".
inline std::string filename_option(const std::string& config_json,
                                   const std::string& default_name,
                                   const std::string& handler) {
  nlohmann::json config = nlohmann::json::parse(config_json, nullptr, false);
  if (!config.is_object()) {
    throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                handler + ": the configuration must be a JSON object");
  }
  auto it = config.find("filename");
  if (it == config.end()) return default_name;
  const std::string filename = it->is_string() ? it->get<std::string>() : "";
  if (filename.empty() || filename == "." || filename == ".." ||
      filename.find('/') != std::string::npos) {
    throw Error(
        CKPT_ERROR_INVALID_ARGUMENT,
        handler + ": 'filename' must be a plain file name, got " + it->dump());
  }
  return filename;
}

}  // namespace ckpt::sdk

#endif  // CKPT_SDK_CONFIG_H_
