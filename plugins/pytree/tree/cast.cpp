#include "tree/cast.h"

#include <ckpt/sdk/half.h>
#include <ckpt/sdk/value.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstring>
#include <type_traits>

namespace ckpt::pytree {

namespace {

using ckpt::sdk::bfloat16_to_float;
using ckpt::sdk::float_to_bfloat16;
using ckpt::sdk::float_to_half;
using ckpt::sdk::half_to_float;

// One element on its way between two dtypes.
struct Element {
  bool is_integer = false;
  bool is_unsigned = false;
  int64_t i = 0;
  uint64_t u = 0;
  double re = 0;
  double im = 0;
};

template <class T>
T load_as(const void* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

Element read(ckpt_dtype dtype, const unsigned char* p) {
  Element e;
  auto as_signed = [&](int64_t v) {
    e.is_integer = true;
    e.i = v;
    e.u = static_cast<uint64_t>(v);
    e.re = static_cast<double>(v);
  };
  auto as_unsigned = [&](uint64_t v) {
    e.is_integer = true;
    e.is_unsigned = true;
    e.u = v;
    e.i = static_cast<int64_t>(v);
    e.re = static_cast<double>(v);
  };
  switch (dtype) {
    case CKPT_DTYPE_BOOL:
      as_unsigned(*p != 0 ? 1 : 0);
      break;
    case CKPT_DTYPE_INT8:
      as_signed(load_as<int8_t>(p));
      break;
    case CKPT_DTYPE_INT16:
      as_signed(load_as<int16_t>(p));
      break;
    case CKPT_DTYPE_INT32:
      as_signed(load_as<int32_t>(p));
      break;
    case CKPT_DTYPE_INT64:
      as_signed(load_as<int64_t>(p));
      break;
    case CKPT_DTYPE_UINT8:
      as_unsigned(load_as<uint8_t>(p));
      break;
    case CKPT_DTYPE_UINT16:
      as_unsigned(load_as<uint16_t>(p));
      break;
    case CKPT_DTYPE_UINT32:
      as_unsigned(load_as<uint32_t>(p));
      break;
    case CKPT_DTYPE_UINT64:
      as_unsigned(load_as<uint64_t>(p));
      break;
    case CKPT_DTYPE_FLOAT16:
      e.re = half_to_float(load_as<uint16_t>(p));
      break;
    case CKPT_DTYPE_BFLOAT16:
      e.re = bfloat16_to_float(load_as<uint16_t>(p));
      break;
    case CKPT_DTYPE_FLOAT32:
      e.re = load_as<float>(p);
      break;
    case CKPT_DTYPE_FLOAT64:
      e.re = load_as<double>(p);
      break;
    case CKPT_DTYPE_COMPLEX64:
      e.re = load_as<float>(p);
      e.im = load_as<float>(p + 4);
      break;
    case CKPT_DTYPE_COMPLEX128:
      e.re = load_as<double>(p);
      e.im = load_as<double>(p + 8);
      break;
    case CKPT_DTYPE_INVALID:
    case CKPT_DTYPE_UNKNOWN:
      break;
  }
  return e;
}

// Float to integer as NumPy does on x86 for in-range values; NaN and
// out-of-range values become 0 instead of being undefined behaviour.
int64_t float_to_int64(double v) {
  if (!(v > -9.2233720368547758e18 && v < 9.2233720368547758e18)) return 0;
  return static_cast<int64_t>(v);
}
uint64_t float_to_uint64(double v) {
  if (v < 0) return static_cast<uint64_t>(float_to_int64(v));
  if (!(v < 1.8446744073709552e19)) return 0;
  return static_cast<uint64_t>(v);
}

template <class T>
void store_integer(const Element& e, unsigned char* p) {
  T v;
  if (e.is_integer) {
    v = e.is_unsigned ? static_cast<T>(e.u) : static_cast<T>(e.i);
  } else if (std::is_signed<T>::value) {
    v = static_cast<T>(float_to_int64(e.re));
  } else {
    v = static_cast<T>(float_to_uint64(e.re));
  }
  std::memcpy(p, &v, sizeof v);
}

template <class T>
void store_plain(T v, unsigned char* p) {
  std::memcpy(p, &v, sizeof v);
}

void write(ckpt_dtype dtype, const Element& e, unsigned char* p) {
  switch (dtype) {
    case CKPT_DTYPE_BOOL:
      *p = (e.is_integer ? e.u != 0 : (e.re != 0 || e.im != 0)) ? 1 : 0;
      break;
    case CKPT_DTYPE_INT8:
      store_integer<int8_t>(e, p);
      break;
    case CKPT_DTYPE_INT16:
      store_integer<int16_t>(e, p);
      break;
    case CKPT_DTYPE_INT32:
      store_integer<int32_t>(e, p);
      break;
    case CKPT_DTYPE_INT64:
      store_integer<int64_t>(e, p);
      break;
    case CKPT_DTYPE_UINT8:
      store_integer<uint8_t>(e, p);
      break;
    case CKPT_DTYPE_UINT16:
      store_integer<uint16_t>(e, p);
      break;
    case CKPT_DTYPE_UINT32:
      store_integer<uint32_t>(e, p);
      break;
    case CKPT_DTYPE_UINT64:
      store_integer<uint64_t>(e, p);
      break;
    case CKPT_DTYPE_FLOAT16:
      store_plain(float_to_half(static_cast<float>(e.re)), p);
      break;
    case CKPT_DTYPE_BFLOAT16:
      store_plain(float_to_bfloat16(static_cast<float>(e.re)), p);
      break;
    case CKPT_DTYPE_FLOAT32:
      store_plain(static_cast<float>(e.re), p);
      break;
    case CKPT_DTYPE_FLOAT64:
      store_plain(e.re, p);
      break;
    case CKPT_DTYPE_COMPLEX64:
      store_plain(static_cast<float>(e.re), p);
      store_plain(static_cast<float>(e.im), p + 4);
      break;
    case CKPT_DTYPE_COMPLEX128:
      store_plain(e.re, p);
      store_plain(e.im, p + 8);
      break;
    case CKPT_DTYPE_INVALID:
    case CKPT_DTYPE_UNKNOWN:
      break;
  }
}

}  // namespace

void cast_elements(ckpt_dtype from, const void* src, ckpt_dtype to, void* dst,
                   size_t count) {
  size_t from_size = ckpt::sdk::dtype_size(from);
  size_t to_size = ckpt::sdk::dtype_size(to);
  if (from == to) {
    std::memcpy(dst, src, count * from_size);
    return;
  }
  const auto* in = static_cast<const unsigned char*>(src);
  auto* out = static_cast<unsigned char*>(dst);
  for (size_t i = 0; i < count; ++i) {
    write(to, read(from, in + i * from_size), out + i * to_size);
  }
}

void copy_overlap(const void* src, const std::vector<int64_t>& from_offset,
                  const std::vector<int64_t>& from_shape, void* dst,
                  const std::vector<int64_t>& to_offset,
                  const std::vector<int64_t>& to_shape, size_t item_size) {
  const size_t rank = to_shape.size();
  std::vector<int64_t> lo(rank), extent(rank);
  for (size_t d = 0; d < rank; ++d) {
    lo[d] = std::max(from_offset[d], to_offset[d]);
    extent[d] =
        std::min(from_offset[d] + from_shape[d], to_offset[d] + to_shape[d]) -
        lo[d];
    if (extent[d] <= 0) return;
  }
  if (rank == 0) {
    std::memcpy(dst, src, item_size);
    return;
  }
  // Element strides of both boxes, in C order.
  std::vector<int64_t> src_stride(rank, 1), dst_stride(rank, 1);
  for (size_t d = rank - 1; d > 0; --d) {
    src_stride[d - 1] = src_stride[d] * from_shape[d];
    dst_stride[d - 1] = dst_stride[d] * to_shape[d];
  }
  const int64_t item = static_cast<int64_t>(item_size);
  const size_t run = static_cast<size_t>(extent[rank - 1]) * item_size;
  std::vector<int64_t> at(rank, 0);  // position within the overlap
  for (;;) {
    int64_t s = 0, t = 0;
    for (size_t d = 0; d < rank; ++d) {
      s += (lo[d] + at[d] - from_offset[d]) * src_stride[d];
      t += (lo[d] + at[d] - to_offset[d]) * dst_stride[d];
    }
    std::memcpy(static_cast<char*>(dst) + t * item,
                static_cast<const char*>(src) + s * item, run);
    size_t d = rank - 1;
    while (d > 0 && ++at[d - 1] == extent[d - 1]) at[--d] = 0;
    if (d == 0) return;
  }
}

uint64_t element_count(const std::vector<int64_t>& shape) {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

bool checked_size(const std::vector<int64_t>& shape, uint64_t item_size,
                  uint64_t* count, uint64_t* nbytes) {
  constexpr uint64_t kLimit = static_cast<uint64_t>(INT64_MAX);
  uint64_t n = 1;
  bool empty = false;
  for (int64_t d : shape) {
    if (d < 0) return false;
    if (d == 0) empty = true;
    // Overflow is judged on the non-zero dimensions: [0, 2^62, 2^62] is
    // empty, but still not a shape anything could have written.
    if (d != 0 && n > kLimit / static_cast<uint64_t>(d)) return false;
    if (d != 0) n *= static_cast<uint64_t>(d);
  }
  if (item_size != 0 && n > kLimit / item_size) return false;
  if (count) *count = empty ? 0 : n;
  if (nbytes) *nbytes = empty ? 0 : n * item_size;
  return true;
}

namespace {

void fit_dim(const unsigned char* src, const std::vector<int64_t>& from,
             unsigned char* dst, const std::vector<int64_t>& to,
             size_t item_size, size_t dim,
             const std::vector<uint64_t>& from_stride,
             const std::vector<uint64_t>& to_stride) {
  int64_t common = std::min(from[dim], to[dim]);
  if (dim + 1 == from.size()) {
    std::memcpy(dst, src, static_cast<size_t>(common) * item_size);
    return;
  }
  for (int64_t i = 0; i < common; ++i) {
    fit_dim(src + i * from_stride[dim] * item_size, from,
            dst + i * to_stride[dim] * item_size, to, item_size, dim + 1,
            from_stride, to_stride);
  }
}

std::vector<uint64_t> c_strides(const std::vector<int64_t>& shape) {
  std::vector<uint64_t> strides(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;) {
    strides[d - 1] = strides[d] * static_cast<uint64_t>(shape[d]);
  }
  return strides;
}

}  // namespace

void fit_to_shape(const void* src, const std::vector<int64_t>& from, void* dst,
                  const std::vector<int64_t>& to, size_t item_size) {
  std::memset(dst, 0, element_count(to) * item_size);
  if (from.empty()) {  // 0-d: one element
    std::memcpy(dst, src, item_size);
    return;
  }
  if (element_count(from) == 0 || element_count(to) == 0) return;
  fit_dim(static_cast<const unsigned char*>(src), from,
          static_cast<unsigned char*>(dst), to, item_size, 0, c_strides(from),
          c_strides(to));
}

}  // namespace ckpt::pytree
