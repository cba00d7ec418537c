// ckpt/sdk/text.h -- the one way ckpt shows shapes in messages and output,
// for the core, the shipped plugins and the tool alike.
#ifndef CKPT_SDK_TEXT_H_
#define CKPT_SDK_TEXT_H_

#include <cstddef>
#include <cstdint>
#include <string>
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

}  // namespace ckpt::sdk

#endif  // CKPT_SDK_TEXT_H_
