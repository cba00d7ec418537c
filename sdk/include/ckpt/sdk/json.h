// ckpt/sdk/json.h -- parsing JSON read from disk, with a nesting limit.
//
// nlohmann::json parses iteratively, but copying, comparing and printing a
// document recurse once per level: 70,000 nested brackets overflow the
// stack. Every JSON document ckpt reads from disk goes through
// check_json_depth (or parse_json_from_disk) first.
#ifndef CKPT_SDK_JSON_H_
#define CKPT_SDK_JSON_H_

#include <ckpt/sdk/error.h>

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace ckpt::sdk {

// The deepest nesting of objects and arrays ckpt reads from disk. Far above
// any checkpoint's metadata (a pytree nests a few levels per tree level)
// and far below what overflows a thread's stack.
inline constexpr size_t kMaxJsonDepth = 512;

// Throws CKPT_ERROR_DATA_LOSS "<what>: JSON nested deeper than N levels"
// when `text` opens more than `max_depth` objects/arrays at once. Linear,
// no recursion, no allocation; strings (and escapes in them) are skipped.
inline void check_json_depth(std::string_view text, const std::string& what,
                             size_t max_depth = kMaxJsonDepth) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character never ends the string
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) {
        throw Error(CKPT_ERROR_DATA_LOSS, what + ": JSON nested deeper than " +
                                              std::to_string(max_depth) +
                                              " levels");
      }
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
}

// `text` parsed as JSON (Json: nlohmann::json or nlohmann::ordered_json)
// after check_json_depth; a syntax error is CKPT_ERROR_DATA_LOSS
// "<what>: not valid JSON (...)". `what` names the file.
template <typename Json = nlohmann::json>
Json parse_json_from_disk(std::string_view text, const std::string& what) {
  check_json_depth(text, what);
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const typename Json::exception& e) {
    throw Error(CKPT_ERROR_DATA_LOSS,
                what + ": not valid JSON (" + e.what() + ")");
  }
}

}  // namespace ckpt::sdk

#endif  // CKPT_SDK_JSON_H_
