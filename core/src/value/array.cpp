// Arrays and dtypes (ckpt/value.h).
#include <ckpt/sdk/dtype.h>
#include <ckpt/sdk/text.h>
#include <ckpt/value.h>

#include <cstring>
#include <functional>
#include <numeric>
#include <string_view>

namespace ckpt {

namespace {

const sdk::DTypeInfo& info(DType dtype) {
  const sdk::DTypeInfo* d = sdk::dtype_info(static_cast<ckpt_dtype>(dtype));
  if (!d) {
    throw InvalidArgumentError("invalid dtype " +
                               std::to_string(static_cast<int>(dtype)));
  }
  return *d;
}

}  // namespace

size_t dtype_size(DType dtype) { return info(dtype).size; }
std::string_view dtype_name(DType dtype) { return info(dtype).name; }
std::string_view dtype_name(const std::optional<DType>& dtype) {
  return dtype ? dtype_name(*dtype) : "unknown";
}

DType dtype_from_name(std::string_view name) {
  const sdk::DTypeInfo* d = sdk::dtype_info(name);
  if (!d) {
    throw InvalidArgumentError("unknown dtype '" + std::string(name) + "'");
  }
  return static_cast<DType>(d->dtype);
}

// ------------------------------------------------------------------ Array

namespace {
void check_shape(const Shape& shape) {
  for (int64_t d : shape) {
    if (d < 0) {
      throw InvalidArgumentError("negative dimension in shape " +
                                 sdk::shape_text(shape));
    }
  }
}
}  // namespace

Array Array::zeros(DType dtype, Shape shape) {
  check_shape(shape);
  Array a;
  a.dtype_ = dtype;
  a.shape_ = std::move(shape);
  size_t bytes = a.nbytes();
  std::shared_ptr<char[]> memory(new char[bytes ? bytes : 1]());
  a.data_ = memory.get();
  a.owner_ = std::move(memory);
  return a;
}

Array Array::copy(DType dtype, Shape shape, const void* data) {
  Array a = zeros(dtype, std::move(shape));
  if (a.nbytes()) std::memcpy(a.data_, data, a.nbytes());
  return a;
}

Array Array::borrow(DType dtype, Shape shape, void* data,
                    std::vector<int64_t> strides) {
  return share(dtype, std::move(shape), data, nullptr, false,
               std::move(strides));
}

Array Array::share(DType dtype, Shape shape, void* data,
                   std::shared_ptr<void> owner, bool immutable,
                   std::vector<int64_t> strides) {
  check_shape(shape);
  if (!strides.empty() && strides.size() != shape.size()) {
    throw InvalidArgumentError("strides " + sdk::shape_text(strides) +
                               " do not match shape " + sdk::shape_text(shape));
  }
  Array a;
  a.dtype_ = dtype;
  a.shape_ = std::move(shape);
  a.strides_ = std::move(strides);
  a.data_ = data;
  a.owner_ = std::move(owner);
  a.immutable_ = immutable;
  if (a.is_contiguous()) a.strides_.clear();
  return a;
}

int64_t Array::num_elements() const {
  return std::accumulate(shape_.begin(), shape_.end(), int64_t{1},
                         std::multiplies<int64_t>());
}

bool Array::is_contiguous() const {
  if (strides_.empty()) return true;
  int64_t expected = 1;
  for (size_t i = shape_.size(); i-- > 0;) {
    if (shape_[i] != 1 && strides_[i] != expected) return false;
    expected *= shape_[i];
  }
  return true;
}

Array Array::contiguous_copy() const {
  Array out = zeros(dtype_, shape_);
  const size_t item = dtype_size(dtype_);
  const int64_t n = num_elements();
  if (n == 0) return out;
  if (is_contiguous()) {
    std::memcpy(out.data_, data_, nbytes());
    return out;
  }
  // Walk the source in C order with an index counter.
  std::vector<int64_t> index(shape_.size(), 0);
  const char* src = static_cast<const char*>(data_);
  char* dst = static_cast<char*>(out.data_);
  for (int64_t k = 0; k < n; ++k) {
    int64_t offset = 0;
    for (size_t d = 0; d < shape_.size(); ++d) offset += index[d] * strides_[d];
    std::memcpy(dst + k * item, src + offset * static_cast<int64_t>(item),
                item);
    for (size_t d = shape_.size(); d-- > 0;) {
      if (++index[d] < shape_[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

bool Array::operator==(const Array& other) const {
  if (dtype_ != other.dtype_ || shape_ != other.shape_) return false;
  Array a = is_contiguous() ? *this : contiguous_copy();
  Array b = other.is_contiguous() ? other : other.contiguous_copy();
  return nbytes() == 0 || std::memcmp(a.data_, b.data_, nbytes()) == 0;
}

}  // namespace ckpt
