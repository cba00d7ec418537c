// The SDK's float16 and bfloat16 codec, over every one of the 65,536 bit
// patterns of each: widening against values computed another way, rounding
// at every midpoint between neighbours, NaNs; then against NumPy (float16)
// and ml_dtypes (bfloat16) when the Python that runs the tests has them.
#include <ckpt/sdk/half.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "test_util.h"

namespace {

using ckpt::sdk::bfloat16_to_float;
using ckpt::sdk::float_to_bfloat16;
using ckpt::sdk::float_to_half;
using ckpt::sdk::half_to_float;

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

// The value of float16 pattern `h` from its definition, in double.
double half_value(uint16_t h) {
  const int sign = (h >> 15) ? -1 : 1;
  const int exponent = (h >> 10) & 0x1f;
  const int mantissa = h & 0x3ff;
  if (exponent == 31) {
    return mantissa ? std::numeric_limits<double>::quiet_NaN()
                    : sign * std::numeric_limits<double>::infinity();
  }
  if (exponent == 0) return sign * std::ldexp(mantissa, -24);
  return sign * std::ldexp(1024 + mantissa, exponent - 25);
}

bool is_half_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }
bool is_bfloat16_nan(uint16_t b) {
  return (b & 0x7f80) == 0x7f80 && (b & 0x7f);
}

// Checks `encode` at the midpoints between every finite pattern `h` and
// the next one away from zero (`decode` widens): a tie goes to the even
// pattern, a float just inside either side to that side. The midpoint of
// two neighbours needs one more significant bit than they have: a float
// holds it exactly.
template <class Encode, class Decode>
void check_midpoints(uint16_t h, Encode encode, Decode decode) {
  const float a = decode(h);
  const float b = decode(static_cast<uint16_t>(h + 1));
  const float mid = static_cast<float>((static_cast<double>(a) + b) / 2);
  REQUIRE(static_cast<double>(mid) == (static_cast<double>(a) + b) / 2);
  const uint16_t even = (h & 1) ? static_cast<uint16_t>(h + 1) : h;
  INFO("pattern 0x" << std::hex << h);
  CHECK(encode(mid) == even);
  CHECK(encode(std::nextafter(mid, a)) == h);
  CHECK(encode(std::nextafter(mid, b)) == static_cast<uint16_t>(h + 1));
}

}  // namespace

TEST_CASE("float16 widens every pattern exactly", "[half]") {
  for (uint32_t i = 0; i < 65536; ++i) {
    const auto h = static_cast<uint16_t>(i);
    const float f = half_to_float(h);
    INFO("pattern 0x" << std::hex << i);
    if (is_half_nan(h)) {
      REQUIRE(std::isnan(f));
      REQUIRE(std::signbit(f) == ((h >> 15) != 0));
      // The payload, made quiet (its top bit set).
      REQUIRE(((bits_of(f) >> 13) & 0x3ff) == ((h & 0x3ffu) | 0x200u));
    } else {
      REQUIRE(static_cast<double>(f) == half_value(h));
      REQUIRE(std::signbit(f) == ((h >> 15) != 0));  // -0 too
    }
  }
}

TEST_CASE("float16 narrows every pattern back to itself, NaNs made quiet",
          "[half]") {
  for (uint32_t i = 0; i < 65536; ++i) {
    const auto h = static_cast<uint16_t>(i);
    INFO("pattern 0x" << std::hex << i);
    REQUIRE(float_to_half(half_to_float(h)) ==
            (is_half_nan(h) ? (h | 0x200) : h));
  }
}

TEST_CASE("float16 rounds to nearest, ties to even, at every midpoint",
          "[half]") {
  for (uint32_t magnitude = 0; magnitude < 0x7bff; ++magnitude) {
    for (uint32_t sign : {0u, 0x8000u}) {
      check_midpoints(static_cast<uint16_t>(sign | magnitude), float_to_half,
                      half_to_float);
    }
  }
  // Past the largest finite float16 (65504): halfway to 65536 and beyond
  // is infinity, just below it 65504.
  CHECK(float_to_half(65520.0f) == 0x7c00);
  CHECK(float_to_half(-65520.0f) == 0xfc00);
  CHECK(float_to_half(std::nextafter(65520.0f, 0.0f)) == 0x7bff);
  CHECK(float_to_half(1e30f) == 0x7c00);
  CHECK(float_to_half(std::numeric_limits<float>::infinity()) == 0x7c00);
  // Below the smallest subnormal (2^-24): half of it is a tie to 0.
  CHECK(float_to_half(std::ldexp(1.0f, -25)) == 0x0000);
  CHECK(float_to_half(std::nextafter(std::ldexp(1.0f, -25), 1.0f)) == 0x0001);
  CHECK(float_to_half(-std::ldexp(1.0f, -30)) == 0x8000);
  CHECK(float_to_half(std::numeric_limits<float>::denorm_min()) == 0x0000);
}

TEST_CASE("float16 keeps a NaN's sign and the top of its payload", "[half]") {
  const float quiet = std::numeric_limits<float>::quiet_NaN();
  CHECK(float_to_half(quiet) == 0x7e00);
  CHECK(float_to_half(-quiet) == 0xfe00);
  uint32_t signaling_bits = 0x7f802000u;  // payload bit 13: float16 bit 0
  float signaling;
  std::memcpy(&signaling, &signaling_bits, sizeof signaling);
  CHECK(float_to_half(signaling) == 0x7e01);
  signaling_bits = 0x7f800001u;  // payload below float16's: still a NaN
  std::memcpy(&signaling, &signaling_bits, sizeof signaling);
  CHECK(float_to_half(signaling) == 0x7e00);
}

TEST_CASE("bfloat16 widens, narrows and rounds every pattern", "[half]") {
  for (uint32_t i = 0; i < 65536; ++i) {
    const auto b = static_cast<uint16_t>(i);
    const float f = bfloat16_to_float(b);
    INFO("pattern 0x" << std::hex << i);
    REQUIRE(bits_of(f) == i << 16);
    REQUIRE(float_to_bfloat16(f) ==
            (is_bfloat16_nan(b) ? ((b & 0x8000) | 0x7fc0) : b));
    const uint32_t magnitude = i & 0x7fff;
    if (magnitude < 0x7f7f)
      check_midpoints(b, float_to_bfloat16, bfloat16_to_float);
  }
  // Halfway past the largest finite bfloat16 is infinity.
  CHECK(float_to_bfloat16(std::numeric_limits<float>::max()) == 0x7f80);
  CHECK(float_to_bfloat16(-std::numeric_limits<float>::infinity()) == 0xff80);
}

TEST_CASE("the codec agrees with NumPy's float16 and ml_dtypes' bfloat16",
          "[half][python]") {
  // Every pattern's value, each midpoint and a float on either side of it.
  std::vector<float> inputs;
  for (uint32_t i = 0; i < 65536; ++i) {
    const float h = half_to_float(static_cast<uint16_t>(i));
    const float b = bfloat16_to_float(static_cast<uint16_t>(i));
    inputs.push_back(h);
    inputs.push_back(b);
    for (auto [decode, next] :
         {std::pair{h, half_to_float(static_cast<uint16_t>(i + 1))},
          std::pair{b, bfloat16_to_float(static_cast<uint16_t>(i + 1))}}) {
      if (!std::isfinite(decode) || !std::isfinite(next)) continue;
      const float mid = static_cast<float>(
          (static_cast<double>(decode) + static_cast<double>(next)) / 2);
      inputs.insert(inputs.end(), {mid, std::nextafter(mid, decode),
                                   std::nextafter(mid, next)});
    }
  }
  ckpt::test::TempDir dir;
  const std::string in = (dir.path() / "in.f32").string();
  const std::string out = (dir.path() / "out.u16").string();
  FILE* file = std::fopen(in.c_str(), "wb");
  REQUIRE(file);
  REQUIRE(std::fwrite(inputs.data(), sizeof(float), inputs.size(), file) ==
          inputs.size());
  REQUIRE(std::fclose(file) == 0);
  // Float16 from NumPy (of $CKPT_TEST_PYTHON, else Debian's Python); bfloat16
  // from ml_dtypes when it is installed, else float16 again (then only float16
  // is compared, and the test says so).
  const std::string script =
      "import sys, numpy as np\n"
      "np.seterr(all='ignore')\n"
      "x = np.fromfile(sys.argv[1], dtype=np.float32)\n"
      "try:\n"
      "    import ml_dtypes; b = x.astype(ml_dtypes.bfloat16).view(np.uint16)\n"
      "    print('ml_dtypes', ml_dtypes.__version__)\n"
      "except ImportError:\n"
      "    b = None; print('no ml_dtypes')\n"
      "h = x.astype(np.float16).view(np.uint16)\n"
      "np.concatenate([h, b if b is not None else h]).tofile(sys.argv[2])\n"
      "print('numpy', np.__version__)\n";
  const std::string script_file = (dir.path() / "codec.py").string();
  ckpt::test::write_text(script_file, script);
  const auto result =
      ckpt::test::run_command(std::string(std::getenv("CKPT_TEST_PYTHON")
                                              ? std::getenv("CKPT_TEST_PYTHON")
                                              : CKPT_PYTHON) +
                              " " + script_file + " " + in + " " + out);
  INFO(result.output);
  REQUIRE(result.status == 0);
  const std::string bytes = ckpt::test::read_text(out);
  REQUIRE(bytes.size() == 2 * inputs.size() * sizeof(uint16_t));
  const bool with_ml_dtypes =
      result.output.find("no ml_dtypes") == std::string::npos;
  if (!with_ml_dtypes) WARN("ml_dtypes is not installed: bfloat16 unchecked");
  std::vector<uint16_t> theirs(2 * inputs.size());
  std::memcpy(theirs.data(), bytes.data(), bytes.size());
  size_t half_mismatches = 0, bfloat16_mismatches = 0;
  for (size_t k = 0; k < inputs.size(); ++k) {
    // NaNs: NumPy's quieting depends on how it was built; both must be a
    // NaN of the same sign.
    const uint16_t ours = float_to_half(inputs[k]);
    const uint16_t numpy = theirs[k];
    if (is_half_nan(ours)
            ? !(is_half_nan(numpy) && (numpy & 0x8000) == (ours & 0x8000))
            : numpy != ours) {
      ++half_mismatches;
    }
    if (with_ml_dtypes &&
        float_to_bfloat16(inputs[k]) != theirs[inputs.size() + k]) {
      ++bfloat16_mismatches;
    }
  }
  CHECK(half_mismatches == 0);
  CHECK(bfloat16_mismatches == 0);
}
