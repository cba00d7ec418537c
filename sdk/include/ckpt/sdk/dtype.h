// ckpt/sdk/dtype.h -- the one table of ckpt's dtypes: ABI code, NumPy name,
// element size and DLPack type. The core, the shipped plugins and the tool
// all read it; a plugin may too.
#ifndef CKPT_SDK_DTYPE_H_
#define CKPT_SDK_DTYPE_H_

#include <ckpt/abi.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ckpt::sdk {

struct DTypeInfo {
  ckpt_dtype dtype;
  const char* name;  // NumPy's name
  size_t size;       // bytes per element
  uint8_t dl_code;   // DLDataTypeCode; bool is kDLUInt of 8 bits
};

inline constexpr DTypeInfo kDTypes[] = {
    {CKPT_DTYPE_BOOL, "bool", 1, kDLUInt},
    {CKPT_DTYPE_INT8, "int8", 1, kDLInt},
    {CKPT_DTYPE_INT16, "int16", 2, kDLInt},
    {CKPT_DTYPE_INT32, "int32", 4, kDLInt},
    {CKPT_DTYPE_INT64, "int64", 8, kDLInt},
    {CKPT_DTYPE_UINT8, "uint8", 1, kDLUInt},
    {CKPT_DTYPE_UINT16, "uint16", 2, kDLUInt},
    {CKPT_DTYPE_UINT32, "uint32", 4, kDLUInt},
    {CKPT_DTYPE_UINT64, "uint64", 8, kDLUInt},
    {CKPT_DTYPE_FLOAT16, "float16", 2, kDLFloat},
    {CKPT_DTYPE_BFLOAT16, "bfloat16", 2, kDLBfloat},
    {CKPT_DTYPE_FLOAT32, "float32", 4, kDLFloat},
    {CKPT_DTYPE_FLOAT64, "float64", 8, kDLFloat},
    {CKPT_DTYPE_COMPLEX64, "complex64", 8, kDLComplex},
    {CKPT_DTYPE_COMPLEX128, "complex128", 16, kDLComplex},
};

// The row of `dtype`; null for CKPT_DTYPE_INVALID, CKPT_DTYPE_UNKNOWN and
// any number that is no dtype.
inline const DTypeInfo* dtype_info(ckpt_dtype dtype) {
  for (const DTypeInfo& d : kDTypes) {
    if (d.dtype == dtype) return &d;
  }
  return nullptr;
}

// The row of NumPy name `name`; null when there is none.
inline const DTypeInfo* dtype_info(std::string_view name) {
  for (const DTypeInfo& d : kDTypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

// Size in bytes of one element of `dtype`; 0 when it is no dtype.
inline size_t dtype_size(ckpt_dtype dtype) {
  const DTypeInfo* d = dtype_info(dtype);
  return d ? d->size : 0;
}

// The DLPack type of `dtype` (bool is kDLUInt, 8 bits: dlpack 0.6 has no
// bool); {kDLInt, 0, 1} when it is no dtype.
inline DLDataType dl_dtype(ckpt_dtype dtype) {
  const DTypeInfo* d = dtype_info(dtype);
  if (!d) return DLDataType{kDLInt, 0, 1};
  return DLDataType{d->dl_code, static_cast<uint8_t>(d->size * 8), 1};
}

}  // namespace ckpt::sdk

#endif  // CKPT_SDK_DTYPE_H_
