#include "tree/dtypes.h"

#include <ckpt/sdk/dtype.h>
#include <ckpt/sdk/value.h>

namespace ckpt::pytree {

namespace {

hid_t float16_type() {
  hid_t t = H5Tcopy(H5T_IEEE_F32LE);
  // sign bit 15, exponent bits 10..14, mantissa bits 0..9, bias 15.
  H5Tset_fields(t, 15, 10, 5, 0, 10);
  H5Tset_size(t, 2);
  H5Tset_ebias(t, 15);
  return t;
}

hid_t complex_type(hid_t part, size_t part_size) {
  hid_t t = H5Tcreate(H5T_COMPOUND, 2 * part_size);
  H5Tinsert(t, "r", 0, part);
  H5Tinsert(t, "i", part_size, part);
  return t;
}

hid_t bool_type() {
  hid_t t = H5Tenum_create(H5T_NATIVE_INT8);
  int8_t no = 0, yes = 1;
  H5Tenum_insert(t, "FALSE", &no);
  H5Tenum_insert(t, "TRUE", &yes);
  return t;
}

}  // namespace

bool is_valid_dtype(ckpt_dtype dtype) {
  return ckpt::sdk::dtype_info(dtype) != nullptr;
}

std::string dtype_name(ckpt_dtype dtype) {
  const ckpt::sdk::DTypeInfo* d = ckpt::sdk::dtype_info(dtype);
  return d ? d->name : "invalid";
}

ckpt_dtype dtype_from_name(const std::string& name) {
  const ckpt::sdk::DTypeInfo* d = ckpt::sdk::dtype_info(name);
  return d ? d->dtype : CKPT_DTYPE_INVALID;
}

hid_t hdf5_type(ckpt_dtype dtype) {
  switch (dtype) {
    case CKPT_DTYPE_BOOL:
      return bool_type();
    case CKPT_DTYPE_INT8:
      return H5Tcopy(H5T_STD_I8LE);
    case CKPT_DTYPE_INT16:
      return H5Tcopy(H5T_STD_I16LE);
    case CKPT_DTYPE_INT32:
      return H5Tcopy(H5T_STD_I32LE);
    case CKPT_DTYPE_INT64:
      return H5Tcopy(H5T_STD_I64LE);
    case CKPT_DTYPE_UINT8:
      return H5Tcopy(H5T_STD_U8LE);
    case CKPT_DTYPE_UINT16:
      return H5Tcopy(H5T_STD_U16LE);
    case CKPT_DTYPE_UINT32:
      return H5Tcopy(H5T_STD_U32LE);
    case CKPT_DTYPE_UINT64:
      return H5Tcopy(H5T_STD_U64LE);
    case CKPT_DTYPE_FLOAT16:
      return float16_type();
    case CKPT_DTYPE_BFLOAT16:
      return H5Tcopy(H5T_STD_U16LE);
    case CKPT_DTYPE_FLOAT32:
      return H5Tcopy(H5T_IEEE_F32LE);
    case CKPT_DTYPE_FLOAT64:
      return H5Tcopy(H5T_IEEE_F64LE);
    case CKPT_DTYPE_COMPLEX64:
      return complex_type(H5T_IEEE_F32LE, 4);
    case CKPT_DTYPE_COMPLEX128:
      return complex_type(H5T_IEEE_F64LE, 8);
    case CKPT_DTYPE_INVALID:
    case CKPT_DTYPE_UNKNOWN:
      break;
  }
  return H5I_INVALID_HID;
}

namespace {

// Elements are read byte for byte: a big-endian type would load swapped.
bool little_endian(hid_t type) {
  H5T_order_t order = H5Tget_order(type);
  return order == H5T_ORDER_LE || order == H5T_ORDER_NONE;
}

// A compound {r, i} of little-endian floats of `part` bytes each.
bool is_complex_type(hid_t type, size_t part) {
  if (H5Tget_nmembers(type) != 2) return false;
  for (unsigned i = 0; i < 2; ++i) {
    hid_t member = H5Tget_member_type(type, i);
    if (member < 0) return false;
    bool ok = H5Tget_class(member) == H5T_FLOAT &&
              H5Tget_size(member) == part && little_endian(member) &&
              H5Tget_member_offset(type, i) == i * part;
    H5Tclose(member);
    if (!ok) return false;
  }
  return true;
}

}  // namespace

bool hdf5_type_matches(hid_t type, ckpt_dtype dtype) {
  size_t size = H5Tget_size(type);
  if (size != ckpt::sdk::dtype_size(dtype)) return false;
  H5T_class_t cls = H5Tget_class(type);
  if (cls != H5T_COMPOUND && !little_endian(type)) return false;
  switch (dtype) {
    case CKPT_DTYPE_BOOL:
      return cls == H5T_ENUM || cls == H5T_INTEGER;
    case CKPT_DTYPE_INT8:
    case CKPT_DTYPE_INT16:
    case CKPT_DTYPE_INT32:
    case CKPT_DTYPE_INT64:
      return cls == H5T_INTEGER && H5Tget_sign(type) == H5T_SGN_2;
    case CKPT_DTYPE_UINT8:
    case CKPT_DTYPE_UINT16:
    case CKPT_DTYPE_UINT32:
    case CKPT_DTYPE_UINT64:
    case CKPT_DTYPE_BFLOAT16:
      return cls == H5T_INTEGER && H5Tget_sign(type) == H5T_SGN_NONE;
    case CKPT_DTYPE_FLOAT16:
    case CKPT_DTYPE_FLOAT32:
    case CKPT_DTYPE_FLOAT64:
      return cls == H5T_FLOAT;
    case CKPT_DTYPE_COMPLEX64:
    case CKPT_DTYPE_COMPLEX128:
      return cls == H5T_COMPOUND && is_complex_type(type, size / 2);
    case CKPT_DTYPE_INVALID:
    case CKPT_DTYPE_UNKNOWN:
      break;
  }
  return false;
}

std::string describe_hdf5_type(hid_t type) {
  const char* cls = "unknown type";
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      cls = "integer";
      break;
    case H5T_FLOAT:
      cls = "float";
      break;
    case H5T_STRING:
      cls = "string";
      break;
    case H5T_COMPOUND:
      cls = "compound";
      break;
    case H5T_ENUM:
      cls = "enum";
      break;
    case H5T_OPAQUE:
      cls = "opaque";
      break;
    case H5T_ARRAY:
      cls = "array";
      break;
    case H5T_VLEN:
      cls = "variable-length";
      break;
    default:
      break;
  }
  return std::string(cls) + " of " + std::to_string(H5Tget_size(type)) +
         " bytes";
}

}  // namespace ckpt::pytree
