// ckpt/sdk/text.h -- the one way ckpt shows shapes and names in messages
// and output, and tells text JSON can hold, for the core, the shipped
// plugins and the tool alike.
#ifndef CKPT_SDK_TEXT_H_
#define CKPT_SDK_TEXT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt::sdk {

// "[2, 3]"; "[]" for a 0-d shape.
inline std::string shape_text(const int64_t* dims, size_t rank) {
  std::string out = "[";
  for (size_t i = 0; i < rank; ++i) {
    if (i) out += ", ";
    out += std::to_string(dims[i]);
  }
  return out + "]";
}

inline std::string shape_text(const std::vector<int64_t>& shape) {
  return shape_text(shape.data(), shape.size());
}

// Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or code
// points above U+10FFFF): what JSON text, and so every metadata file, can
// hold.
inline bool is_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;  // the sequence is cut short
    for (size_t k = 1; k <= n; ++k) {
      const unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xc0) != 0x80) return false;
      cp = cp << 6 | (d & 0x3f);
    }
    if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 3 && (cp < 0x10000 || cp > 0x10ffff))) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

// `s` as a message shows it: a NUL as \0, other control bytes as \xNN, and
// when `s` is not UTF-8, every byte above 0x7f as \xNN too (a terminal
// would show nothing, or garbage).
inline std::string escaped(std::string_view s) {
  static const char hex[] = "0123456789abcdef";
  const bool utf8 = is_utf8(s);
  std::string out;
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c == 0) {
      out += "\\0";
    } else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    } else {
      out += ch;
    }
  }
  return out;
}

}  // namespace ckpt::sdk

#endif  // CKPT_SDK_TEXT_H_
