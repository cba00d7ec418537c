// The writer of the HDF5 array file (see array_file.h).
#include <ckpt/sdk/error.h>
#include <ckpt/sdk/files.h>
#include <ckpt/sdk/value.h>
#include <fcntl.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "hdf5/array_file.h"
#include "hdf5/hdf5_lock.h"
#include "hdf5/structure_checksum.h"
#include "records/tree_metadata.h"
#include "tree/dtypes.h"

namespace ckpt::pytree {

namespace {

using ckpt::sdk::Error;
using ckpt::sdk::throw_os_error;

constexpr const char* kIndexDataset = "/_ckpt_index";
constexpr const char* kFormatAttribute = "ckpt_format";
constexpr const char* kDtypeAttribute = "ckpt_dtype";
constexpr size_t kIndexMaxRank = 8;
constexpr uint64_t kChunkTargetBytes = 1 << 20;

Hid make_space(const std::vector<int64_t>& dims) {
  if (dims.empty()) return Hid(H5Screate(H5S_SCALAR), H5Sclose);
  std::vector<hsize_t> d = to_hsize(dims);
  return Hid(H5Screate_simple(static_cast<int>(d.size()), d.data(), nullptr),
             H5Sclose);
}

Hid utf8_string_type() {
  Hid t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t.get(), H5T_VARIABLE);
  H5Tset_cset(t.get(), H5T_CSET_UTF8);
  return t;
}

void set_string_attribute(hid_t object, const char* name,
                          const std::string& value) {
  Hid type = utf8_string_type();
  Hid space(H5Screate(H5S_SCALAR), H5Sclose);
  Hid attr(H5Acreate2(object, name, type.get(), space.get(), H5P_DEFAULT,
                      H5P_DEFAULT),
           H5Aclose);
  const char* text = value.c_str();
  if (!attr.ok() || H5Awrite(attr.get(), type.get(), &text) < 0) {
    fail(CKPT_ERROR_INTERNAL, std::string("cannot write attribute ") + name);
  }
}

// Chunks of whole rows of about kChunkTargetBytes.
std::vector<hsize_t> chunk_dims(const std::vector<int64_t>& dims,
                                size_t item_size) {
  std::vector<hsize_t> chunk = to_hsize(dims);
  uint64_t row_bytes = item_size;
  for (size_t d = 1; d < dims.size(); ++d) row_bytes *= chunk[d];
  hsize_t rows = std::max<uint64_t>(
      1, kChunkTargetBytes / std::max<uint64_t>(row_bytes, 1));
  chunk[0] = std::min<hsize_t>(chunk[0], rows);
  return chunk;
}

struct Pending {
  uint64_t file_offset;
  const void* data;
  uint64_t nbytes;
  const std::vector<Span>* pieces;  // when not null, the bytes (in order)
};

// Maps every non-empty source of the virtual dataset `ds` (of dataspace
// `space`) in `dcpl`.
void add_virtual_sources(hid_t dcpl, hid_t space, const DatasetToWrite& ds,
                         const std::string& what) {
  for (const VirtualSource& source : ds.sources) {
    bool empty = false;
    for (int64_t d : source.shape) empty = empty || d == 0;
    if (empty) continue;
    Hid virtual_space(H5Scopy(space), H5Sclose);
    std::vector<hsize_t> start = to_hsize(source.offset);
    std::vector<hsize_t> count = to_hsize(source.shape);
    Hid source_space = make_space(source.shape);
    if (!virtual_space.ok() || !source_space.ok() ||
        H5Sselect_hyperslab(virtual_space.get(), H5S_SELECT_SET, start.data(),
                            nullptr, count.data(), nullptr) < 0 ||
        H5Pset_virtual(dcpl, virtual_space.get(), source.file.c_str(),
                       source.dataset.c_str(), source_space.get()) < 0) {
      fail(CKPT_ERROR_INTERNAL, what + ": cannot map " + source.file + ":" +
                                    source.dataset +
                                    " into the virtual "
                                    "dataset " +
                                    ds.path);
    }
  }
}

Hid create_dataset(hid_t file, hid_t lcpl, const DatasetToWrite& ds,
                   const StorageOptions& options, std::vector<Pending>& pending,
                   const std::string& what) {
  Hid type(hdf5_type(ds.dtype), H5Tclose);
  if (!type.ok()) {
    throw Error(
        CKPT_ERROR_INVALID_ARGUMENT,
        what + ": dtype " + dtype_name(ds.dtype) + " cannot be stored in HDF5");
  }
  Hid space = make_space(ds.dims);
  Hid dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  if (!ds.sources.empty()) {
    add_virtual_sources(dcpl.get(), space.get(), ds, what);
  }
  bool nonempty = ds.nbytes > 0;
  bool chunked = ds.compressible && nonempty && !ds.dims.empty() &&
                 (options.chunking || !options.compression.empty());
  if (chunked) {
    std::vector<hsize_t> chunk =
        chunk_dims(ds.dims, ckpt::sdk::dtype_size(ds.dtype));
    H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data());
    if (options.compression == "gzip") {
      H5Pset_deflate(dcpl.get(),
                     static_cast<unsigned>(options.compression_level));
    }
  } else if (ds.sources.empty()) {
    H5Pset_layout(dcpl.get(), H5D_CONTIGUOUS);
    H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_EARLY);
  }
  H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER);
  Hid dataset(H5Dcreate2(file, ds.path.c_str(), type.get(), space.get(), lcpl,
                         dcpl.get(), H5P_DEFAULT),
              H5Dclose);
  if (!dataset.ok()) {
    fail(CKPT_ERROR_INTERNAL, what + ": cannot create dataset " + ds.path);
  }
  set_string_attribute(dataset.get(), kDtypeAttribute, dtype_name(ds.dtype));
  if (!nonempty) return dataset;
  if (chunked) {
    check(H5Dwrite(dataset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT,
                   ds.data),
          what + ": cannot write dataset " + ds.path);
    return dataset;
  }
  haddr_t offset = H5Dget_offset(dataset.get());
  if (offset == HADDR_UNDEF) {
    fail(CKPT_ERROR_INTERNAL,
         what + ": dataset " + ds.path + " has no storage");
  }
  pending.push_back(
      {offset, ds.data, ds.nbytes, ds.pieces.empty() ? nullptr : &ds.pieces});
  return dataset;
}

// The row layout of /_ckpt_index in memory: one variable-length string
// (the key); the dtype's name in a fixed 10-byte field ("complex128" is the
// longest), NUL-padded. Each variable-length string costs HDF5 a heap
// object: three a row made the index the slowest part of saving many small
// arrays.
constexpr size_t kDtypeField = 10;
struct IndexRecord {
  const char* key;
  char dtype[kDtypeField];
  uint8_t packed;
  uint64_t offset;
  uint64_t count;
  uint32_t ndim;
  int64_t shape[kIndexMaxRank];
};

void write_index(hid_t file, const std::vector<IndexRow>& rows,
                 const std::string& what) {
  Hid text = utf8_string_type();
  Hid dtype_text(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(dtype_text.get(), kDtypeField);
  H5Tset_strpad(dtype_text.get(), H5T_STR_NULLPAD);
  hsize_t rank_dims[1] = {kIndexMaxRank};
  Hid shape_type(H5Tarray_create2(H5T_STD_I64LE, 1, rank_dims), H5Tclose);
  Hid type(H5Tcreate(H5T_COMPOUND, sizeof(IndexRecord)), H5Tclose);
  H5Tinsert(type.get(), "key", HOFFSET(IndexRecord, key), text.get());
  H5Tinsert(type.get(), "dtype", HOFFSET(IndexRecord, dtype), dtype_text.get());
  H5Tinsert(type.get(), "packed", HOFFSET(IndexRecord, packed), H5T_STD_U8LE);
  H5Tinsert(type.get(), "offset", HOFFSET(IndexRecord, offset), H5T_STD_U64LE);
  H5Tinsert(type.get(), "count", HOFFSET(IndexRecord, count), H5T_STD_U64LE);
  H5Tinsert(type.get(), "ndim", HOFFSET(IndexRecord, ndim), H5T_STD_U32LE);
  H5Tinsert(type.get(), "shape", HOFFSET(IndexRecord, shape), shape_type.get());
  std::vector<IndexRecord> records(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    IndexRecord& r = records[i];
    r = IndexRecord{};
    r.key = rows[i].key.c_str();
    const std::string name = dtype_name(rows[i].dtype);
    std::memcpy(r.dtype, name.data(), std::min(name.size(), kDtypeField));
    r.packed = rows[i].packed ? 1 : 0;
    r.offset = rows[i].offset;
    r.count = rows[i].count;
    r.ndim = static_cast<uint32_t>(rows[i].shape.size());
    for (size_t d = 0; d < rows[i].shape.size() && d < kIndexMaxRank; ++d) {
      r.shape[d] = rows[i].shape[d];
    }
  }
  Hid space = make_space({static_cast<int64_t>(records.size())});
  Hid dataset(H5Dcreate2(file, kIndexDataset, type.get(), space.get(),
                         H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
              H5Dclose);
  if (!dataset.ok() ||
      (!records.empty() && H5Dwrite(dataset.get(), type.get(), H5S_ALL, H5S_ALL,
                                    H5P_DEFAULT, records.data()) < 0)) {
    fail(CKPT_ERROR_INTERNAL, what + ": cannot write the array index");
  }
}

// Writes `pieces` (`n` bytes in all) back to back at `offset` of `fd`, many
// at a time (pwritev). False with errno set as pwrite_full.
bool pwrite_pieces(int fd, const std::vector<Span>& pieces, uint64_t n,
                   uint64_t offset) {
  constexpr size_t kBatch = 1024;  // IOV_MAX on Linux
  std::vector<iovec> iov;
  iov.reserve(std::min(pieces.size(), kBatch));
  size_t next = 0;
  uint64_t written = 0;
  while (next < pieces.size()) {
    iov.clear();
    uint64_t batch_bytes = 0;
    for (; next < pieces.size() && iov.size() < kBatch &&
           batch_bytes + pieces[next].nbytes <= (1u << 30);
         ++next) {
      if (pieces[next].nbytes == 0) continue;
      iov.push_back({const_cast<void*>(pieces[next].data),
                     static_cast<size_t>(pieces[next].nbytes)});
      batch_bytes += pieces[next].nbytes;
    }
    if (iov.empty() && next < pieces.size()) {  // one piece of 1 GiB or more
      const Span& big = pieces[next++];
      if (!ckpt::sdk::pwrite_full(fd, big.data, big.nbytes, offset + written)) {
        return false;
      }
      written += big.nbytes;
      continue;
    }
    // A short write continues where it stopped, piece by piece.
    size_t first = 0;
    uint64_t left = batch_bytes;
    while (left > 0) {
      ssize_t w = ::pwritev(fd, iov.data() + first,
                            static_cast<int>(iov.size() - first),
                            static_cast<off_t>(offset + written));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        if (w == 0) errno = 0;
        return false;
      }
      written += static_cast<uint64_t>(w);
      left -= static_cast<uint64_t>(w);
      size_t k = static_cast<size_t>(w);
      while (first < iov.size() && k >= iov[first].iov_len) {
        k -= iov[first].iov_len;
        ++first;
      }
      if (first < iov.size() && k > 0) {
        iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + k;
        iov[first].iov_len -= k;
      }
    }
  }
  if (written != n) {
    errno = EINVAL;
    return false;
  }
  return true;
}

// The structure record of the complete array file `fd` (`file`), whose
// contiguous datasets were filled from `pending`.
ArrayFileStructure record_structure(int fd, const std::vector<Pending>& pending,
                                    const std::string& file,
                                    const std::string& what) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    throw_os_error(errno, what + ": cannot read back " + file);
  }
  ArrayFileStructure structure;
  structure.size = static_cast<uint64_t>(st.st_size);
  for (const Pending& p : pending) {
    if (p.nbytes > 0) structure.extents.push_back({p.file_offset, p.nbytes});
  }
  std::sort(
      structure.extents.begin(), structure.extents.end(),
      [](const Extent& a, const Extent& b) { return a.offset < b.offset; });
  if (!extents_valid(structure.extents, structure.size)) {
    throw Error(CKPT_ERROR_INTERNAL,
                what + ": " + file +
                    ": HDF5 placed datasets overlapping or beyond the end of "
                    "the file");
  }
  if (!hash_outside(fd, structure.size, structure.extents, &structure.xxh3)) {
    throw_os_error(errno != 0 ? errno : EIO,
                   what + ": cannot read back " + file);
  }
  return structure;
}

// Gives the file, whose datasets HDF5 laid out but left as holes, all of
// its blocks at once. Filling holes page by page makes the filesystem
// reserve and map blocks for every page it is handed (ext4's delayed
// allocation): one file of 1 GiB written so costs about 1.3x the kernel
// time of 64 files of 16 MiB (tools/bench: W1 against numpy.save).
// Allocated up front, the writes only fill blocks, and a full device says
// so before any byte is written. Filesystems without fallocate go on as
// before (Linux's fallocate, not posix_fallocate: glibc would emulate it
// by writing zeros over the whole file).
void allocate_whole_file(int fd, const std::string& file,
                         const std::string& what) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size <= 0) return;
  if (::fallocate(fd, 0, 0, st.st_size) == 0) return;
  const int err = errno;
  if (err == EOPNOTSUPP || err == EINVAL || err == ENOSYS) return;
  ::close(fd);
  throw_os_error(err, what + ": cannot write " + file);
}

}  // namespace

ArrayFileStructure write_array_file(const std::string& file,
                                    const std::vector<DatasetToWrite>& datasets,
                                    const std::vector<IndexRow>& index,
                                    const StorageOptions& options,
                                    unsigned file_mode,
                                    const std::string& what) {
  // Created first so that it gets the requested permissions; HDF5 then
  // truncates it and keeps the mode.
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                  static_cast<mode_t>(file_mode));
  if (fd < 0) {
    throw_os_error(errno, what + ": cannot create " + file);
  }
  ::close(fd);
  std::vector<Pending> pending;
  {
    Hdf5Lock lock;
    Hid fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
    H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_LATEST);
    H5Pset_alignment(fapl.get(), 64 * 1024, 4096);
    Hid h5(H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()),
           H5Fclose);
    if (!h5.ok()) fail(CKPT_ERROR_INTERNAL, what + ": cannot create " + file);
    Hid lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
    H5Pset_create_intermediate_group(lcpl.get(), 1);
    H5Pset_char_encoding(lcpl.get(), H5T_CSET_UTF8);
    for (const DatasetToWrite& ds : datasets) {
      create_dataset(h5.get(), lcpl.get(), ds, options, pending, what);
    }
    write_index(h5.get(), index, what);
    set_string_attribute(h5.get(), kFormatAttribute, kStorageFormat);
    if (!h5.close()) fail(CKPT_ERROR_INTERNAL, what + ": cannot close " + file);
  }
  fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    throw_os_error(errno, what + ": cannot reopen " + file);
  }
  allocate_whole_file(fd, file, what);
  for (const Pending& p : pending) {
    if (!(p.pieces
              ? pwrite_pieces(fd, *p.pieces, p.nbytes, p.file_offset)
              : ckpt::sdk::pwrite_full(fd, p.data, p.nbytes, p.file_offset))) {
      // A write that makes no progress is a full device.
      const int err = errno != 0 ? errno : ENOSPC;
      ::close(fd);
      throw_os_error(err, what + ": cannot write " + file);
    }
  }
  ArrayFileStructure structure;
  try {
    structure = record_structure(fd, pending, file, what);
  } catch (...) {
    ::close(fd);
    throw;
  }
  if (::close(fd) != 0) {
    throw_os_error(errno, what + ": cannot write " + file);
  }
  return structure;
}

}  // namespace ckpt::pytree
