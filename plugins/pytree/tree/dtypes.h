// The pytree plugin's dtypes: names in _METADATA and how each dtype is
// stored in HDF5 so that h5py maps it to the matching NumPy dtype.
#ifndef CKPT_PLUGINS_PYTREE_TREE_DTYPES_H_
#define CKPT_PLUGINS_PYTREE_TREE_DTYPES_H_

#include <ckpt/abi.h>
#include <hdf5.h>

#include <cstdint>
#include <string>

namespace ckpt::pytree {

// True for the dtypes ckpt defines (CKPT_DTYPE_BOOL ... COMPLEX128).
bool is_valid_dtype(ckpt_dtype dtype);

// NumPy's name ("float32", "bfloat16", ...); "invalid" otherwise.
std::string dtype_name(ckpt_dtype dtype);
// Inverse of dtype_name; CKPT_DTYPE_INVALID for an unknown name.
ckpt_dtype dtype_from_name(const std::string& name);

// The HDF5 file type of `dtype` (caller closes it with H5Tclose):
//   bool        -> enum of int8 {FALSE=0, TRUE=1}  (h5py: numpy bool)
//   intN/uintN  -> H5T_STD_[IU]N LE
//   float16     -> a 2-byte IEEE-layout float      (h5py: float16)
//   bfloat16    -> H5T_STD_U16LE holding the bit pattern; the dataset
//                  carries the attribute ckpt_dtype = "bfloat16"
//                  (NumPy has no bfloat16: view as ml_dtypes.bfloat16)
//   float32/64  -> H5T_IEEE_F32LE / F64LE
//   complexN    -> compound {r, i} of the float type (h5py: complex)
// The in-memory layout of every one is the element layout ckpt uses, so
// the same type serves as memory type. REQUIRES: the HDF5 lock is held.
hid_t hdf5_type(ckpt_dtype dtype);

// Whether the file type `type` holds elements of `dtype` byte for byte
// (class, size and sign checked). REQUIRES: the HDF5 lock is held.
bool hdf5_type_matches(hid_t type, ckpt_dtype dtype);
// "integer of 4 bytes", "string", ...: for error messages.
// REQUIRES: the HDF5 lock is held.
std::string describe_hdf5_type(hid_t type);

}  // namespace ckpt::pytree

#endif  // CKPT_PLUGINS_PYTREE_TREE_DTYPES_H_
