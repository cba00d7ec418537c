// Text that reaches a JSON document (names, keys, strings, metadata,
// options) must be UTF-8: these checks refuse it, before anything is
// written, with an InvalidArgumentError naming what holds it and showing
// the offending text escaped (ckpt::sdk::escaped).
#ifndef CKPT_SRC_VALUE_UTF8_CHECKS_H_
#define CKPT_SRC_VALUE_UTF8_CHECKS_H_

#include <ckpt/value.h>

#include <nlohmann/json.hpp>
#include <string>

namespace ckpt::internal {

// `text`, the `what` (e.g. "checkpointable name"), must be UTF-8.
void check_utf8(const std::string& text, const std::string& what);

// Every key and string of `document`, `what`, must be UTF-8.
void check_json_text(const nlohmann::json& document, const std::string& what);

// Every dict key, string and JSON document of `value`, `what`, must be
// UTF-8 (the plugin ABI passes them as UTF-8 text).
void check_value_text(const Value& value, const std::string& what);

}  // namespace ckpt::internal

#endif  // CKPT_SRC_VALUE_UTF8_CHECKS_H_
