// ckpt/sdk/half.h -- the one codec of ckpt's 16-bit floats, float16 (IEEE
// binary16) and bfloat16, to and from float, for the core, the shipped
// plugins and the tool alike.
//
// Rounding is to nearest, ties to even, as NumPy's float16 and ml_dtypes'
// bfloat16 round; values past the largest finite one become infinities.
// NaNs stay NaNs of the same sign: a float16 NaN keeps the top bits of its
// payload and is made quiet (as x86's F16C conversions do); a bfloat16 NaN
// becomes the quiet NaN 0x7fc0 with its sign (as ml_dtypes does). Widening
// to float is exact.
#ifndef CKPT_SDK_HALF_H_
#define CKPT_SDK_HALF_H_

#include <cstdint>
#include <cstring>

namespace ckpt::sdk {

namespace half_detail {

inline uint32_t bits_of(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}

inline float float_of(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

}  // namespace half_detail

// The float16 `h` as a float (exact; a NaN keeps its payload, made quiet).
inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) {  // infinity or NaN
    const uint32_t quiet = mantissa != 0 ? 0x400000u : 0;
    return half_detail::float_of(sign | 0x7f800000u | quiet | (mantissa << 13));
  }
  if (exponent != 0) {
    return half_detail::float_of(sign | ((exponent + 112) << 23) |
                                 (mantissa << 13));
  }
  if (mantissa == 0) return half_detail::float_of(sign);
  // Subnormal, mantissa * 2^-24: normalized, its exponent is at most 112.
  uint32_t float_exponent = 113;
  while ((mantissa & 0x400u) == 0) {
    mantissa <<= 1;
    --float_exponent;
  }
  return half_detail::float_of(sign | (float_exponent << 23) |
                               ((mantissa & 0x3ffu) << 13));
}

// `f` rounded to float16, as its bits.
inline uint16_t float_to_half(float f) {
  const uint32_t bits = half_detail::bits_of(f);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) {  // NaN: the top of the payload, quiet
    return static_cast<uint16_t>(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
  }
  // From 65520 (halfway between 65504, the largest float16, and 65536) up.
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);
  if (abs >= 0x38800000u) {  // normal in float16: drop 13 bits, rounded
    const uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
    return static_cast<uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
  }
  // Subnormal in float16 (or zero): the nearest multiple of 2^-24. Up to
  // 2^-25 inclusive, that is zero (a tie goes to the even 0).
  if (abs <= 0x33000000u) return static_cast<uint16_t>(sign);
  const uint32_t mantissa = (abs & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 126 - (abs >> 23);  // 14 to 24
  uint32_t h = mantissa >> shift;
  const uint32_t rest = mantissa & ((1u << shift) - 1);
  const uint32_t halfway = 1u << (shift - 1);
  if (rest > halfway || (rest == halfway && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

// The bfloat16 `b` as a float (exact).
inline float bfloat16_to_float(uint16_t b) {
  return half_detail::float_of(static_cast<uint32_t>(b) << 16);
}

// `f` rounded to bfloat16, as its bits.
inline uint16_t float_to_bfloat16(float f) {
  const uint32_t bits = half_detail::bits_of(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) {  // NaN
    return static_cast<uint16_t>(((bits >> 16) & 0x8000u) | 0x7fc0u);
  }
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

}  // namespace ckpt::sdk

#endif  // CKPT_SDK_HALF_H_
