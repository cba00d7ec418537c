#include <ckpt/sdk/error.h>
#include <ckpt/sdk/files.h>
#include <ckpt/sdk/value.h>
#include <fcntl.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>

#include "hdf5/array_file.h"
#if defined(__x86_64__)
// XXH3 with the widest vector unit the CPU has (twice the speed of the
// SSE2 build on AVX2 machines); the same hashes.
#include <xxh_x86dispatch.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "records/tree_metadata.h"
#include "runtime/parallel.h"
#include "tree/cast.h"
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

// Holds the process-wide HDF5 lock and keeps HDF5 from printing its error
// stack: failures become sdk::Error with hdf5_message().
class Hdf5Lock {
 public:
  Hdf5Lock() : lock_(mutex()) { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

 private:
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  std::lock_guard<std::mutex> lock_;
};

// The innermost message of the current HDF5 error stack, e.g. "truncated
// file: eof = 2048, ...". REQUIRES: the HDF5 lock is held.
std::string hdf5_message() {
  std::string message;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* e, void* data) -> herr_t {
        auto* out = static_cast<std::string*>(data);
        if (n == 0 && e->desc) *out = e->desc;
        return 0;
      },
      &message);
  H5Eclear2(H5E_DEFAULT);
  return message.empty() ? "unknown HDF5 error" : message;
}

// An HDF5 identifier closed at scope end. REQUIRES: destroyed under the
// HDF5 lock.
class Hid {
 public:
  Hid() = default;
  Hid(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Hid(Hid&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  Hid& operator=(Hid&& o) noexcept {
    reset();
    id_ = o.id_;
    close_ = o.close_;
    o.id_ = -1;
    return *this;
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  ~Hid() { reset(); }
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }
  // Closes now and reports whether closing succeeded.
  bool close() {
    if (id_ < 0) return true;
    herr_t status = close_(id_);
    id_ = -1;
    return status >= 0;
  }

 private:
  void reset() {
    if (id_ >= 0 && close_) close_(id_);
    id_ = -1;
  }
  hid_t id_ = -1;
  herr_t (*close_)(hid_t) = nullptr;
};

// The errno HDF5 recorded in `message` ("..., errno = 28, ..."); 0 if none.
int errno_in(const std::string& message) {
  const std::string key = "errno = ";
  const size_t at = message.find(key);
  if (at == std::string::npos) return 0;
  return std::atoi(message.c_str() + at + key.size());
}

// Throws `message` with the HDF5 error behind it. A failure to write
// (`code` internal) that comes from the OS, such as a full disk, takes the
// code of its errno instead; a failure to read keeps its code (a file that
// is not HDF5 is data loss, whatever HDF5 probed on the way).
[[noreturn]] void fail(ckpt_error_code code, const std::string& message) {
  std::string detail = hdf5_message();
  std::replace(detail.begin(), detail.end(), '\n', ' ');
  if (const int err = errno_in(detail);
      err > 0 && code == CKPT_ERROR_INTERNAL) {
    throw Error(ckpt::sdk::error_code_from_errno(err),
                message + ": " + std::strerror(err) + " (" + detail + ")");
  }
  throw Error(code, message + " (" + detail + ")");
}

void check(herr_t status, const std::string& what) {
  if (status < 0) fail(CKPT_ERROR_INTERNAL, what);
}

std::vector<hsize_t> to_hsize(const std::vector<int64_t>& dims) {
  return std::vector<hsize_t>(dims.begin(), dims.end());
}

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

std::string errno_text() { return std::strerror(errno); }

// The structure checksum reads the file in windows of this size; a data
// extent at least kSkipExtent long ends a window (it is skipped, not read).
constexpr uint64_t kHashWindow = 4u << 20;
constexpr uint64_t kSkipExtent = 64u << 10;

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

// Whether `extents` are non-empty, sorted, non-overlapping and inside a
// file of `size` bytes.
bool extents_valid(const std::vector<Extent>& extents, uint64_t size) {
  uint64_t end = 0;
  for (const Extent& e : extents) {
    if (e.length == 0 || e.offset < end || e.offset > size ||
        e.length > size - e.offset) {
      return false;
    }
    end = e.offset + e.length;
  }
  return true;
}

// Stores in `hash` the XXH3-64 of every byte of the `size`-byte file `fd`
// outside `extents` (which passed extents_valid), in file order. Reads
// windows of up to kHashWindow bytes; small extents inside a window are
// read with it (cheaper than another pread), large ones are skipped. False
// with errno set (0 at an unexpected end of file) when a read fails.
bool hash_outside(int fd, uint64_t size, const std::vector<Extent>& extents,
                  uint64_t* hash) {
  std::unique_ptr<XXH3_state_t, XXH_errorcode (*)(XXH3_state_t*)> state(
      XXH3_createState(), XXH3_freeState);
  if (!state) throw std::bad_alloc();
  XXH3_64bits_reset(state.get());
  std::unique_ptr<char[]> buffer(
      new char[static_cast<size_t>(std::min(size, kHashWindow)) + 1]);
  const size_t n = extents.size();
  uint64_t pos = 0;
  size_t e = 0;
  while (pos < size) {
    while (e < n && extents[e].offset + extents[e].length <= pos) ++e;
    if (e < n && extents[e].offset <= pos) {
      pos = extents[e].offset + extents[e].length;
      ++e;
      continue;
    }
    // pos is outside every extent: read up to a window, stopping at the
    // first large extent.
    uint64_t end = std::min(size, pos + kHashWindow);
    for (size_t k = e; k < n && extents[k].offset < end; ++k) {
      if (extents[k].length >= kSkipExtent) {
        end = extents[k].offset;
        break;
      }
    }
    if (!ckpt::sdk::pread_full(fd, buffer.get(), end - pos, pos)) return false;
    uint64_t cur = pos;
    for (size_t k = e; k < n && extents[k].offset < end; ++k) {
      XXH3_64bits_update(state.get(), buffer.get() + (cur - pos),
                         static_cast<size_t>(extents[k].offset - cur));
      cur = std::min(end, extents[k].offset + extents[k].length);
    }
    if (cur < end) {
      XXH3_64bits_update(state.get(), buffer.get() + (cur - pos),
                         static_cast<size_t>(end - cur));
    }
    pos = end;
  }
  *hash = XXH3_64bits_digest(state.get());
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

namespace {

// ckpt writes deflate; shuffle and fletcher32 are HDF5's own and harmless.
// Any other filter would make HDF5 look for a filter plugin on disk.
bool is_known_filter(H5Z_filter_t filter) {
  return filter == H5Z_FILTER_DEFLATE || filter == H5Z_FILTER_SHUFFLE ||
         filter == H5Z_FILTER_FLETCHER32;
}

// Deflate shrinks data at most about 1032-fold: a chunked dataset whose
// storage is smaller than its elements' bytes by more than this is damaged.
constexpr uint64_t kMaxCompressionRatio = 1100;

struct OpenDataset {
  Hid dataset;
  Hid type;
  std::vector<hsize_t> dims;
  H5D_layout_t layout = H5D_LAYOUT_ERROR;
  haddr_t offset = HADDR_UNDEF;  // contiguous storage; else read via HDF5
  uint64_t storage = 0;          // bytes of storage in the file
};

// Contiguous bytes are read in chunks of this size, each checked while it is
// in the reading core's caches.
constexpr uint64_t kReadChunk = 256u << 10;

struct DirectRead {
  uint64_t file_offset;
  uint64_t nbytes;
  void* destination;
  const ArrayToRead* array;
  size_t index;
};

// The error of a damaged or foreign array file.
[[noreturn]] void damaged(const std::string& message) {
  throw Error(CKPT_ERROR_DATA_LOSS, message);
}

void read_through_hdf5(const OpenDataset& ds, const ArrayToRead& r,
                       const std::string& where) {
  Hid memtype(hdf5_type(r.dtype), H5Tclose);
  Hid file_space(H5Dget_space(ds.dataset.get()), H5Sclose);
  Hid mem_space;
  hid_t file_selection = H5S_ALL;
  hid_t mem_selection = H5S_ALL;
  if (r.packed) {
    hsize_t start[1] = {r.offset}, count[1] = {r.count};
    H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, count,
                        nullptr);
    mem_space = Hid(H5Screate_simple(1, count, nullptr), H5Sclose);
    file_selection = file_space.get();
    mem_selection = mem_space.get();
  }
  if (H5Dread(ds.dataset.get(), memtype.get(), mem_selection, file_selection,
              H5P_DEFAULT, r.destination) < 0) {
    fail(CKPT_ERROR_DATA_LOSS, where + ": cannot read the dataset");
  }
}

// Refuses at `where` a dataset ckpt does not write: virtual (its elements
// come from other files, and a missing source reads as fill values),
// external storage, a filter other than deflate/shuffle/fletcher32, or a
// layout other than contiguous, chunked and compact. REQUIRES: the HDF5
// lock is held.
void check_dataset_kind(hid_t dcpl, OpenDataset& ds, const std::string& where) {
  ds.layout = H5Pget_layout(dcpl);
  if (ds.layout == H5D_VIRTUAL) {
    damaged(where +
            " is a virtual dataset (its elements would come from other "
            "files); ckpt never writes one");
  }
  if (ds.layout != H5D_CONTIGUOUS && ds.layout != H5D_CHUNKED &&
      ds.layout != H5D_COMPACT) {
    damaged(where + " has an unknown storage layout");
  }
  if (H5Pget_external_count(dcpl) != 0) {
    damaged(where +
            " keeps its elements in external files; ckpt never writes "
            "such a dataset");
  }
  int filters = H5Pget_nfilters(dcpl);
  if (filters < 0) fail(CKPT_ERROR_DATA_LOSS, where + " is damaged");
  for (int i = 0; i < filters; ++i) {
    unsigned flags = 0, config = 0;
    size_t nvalues = 0;
    H5Z_filter_t filter =
        H5Pget_filter2(dcpl, static_cast<unsigned>(i), &flags, &nvalues,
                       nullptr, 0, nullptr, &config);
    if (!is_known_filter(filter)) {
      damaged(where + " uses HDF5 filter " + std::to_string(filter) +
              ", which ckpt never writes");
    }
  }
}

// Checks where the elements of `ds` (`total` bytes) are stored: for a
// contiguous dataset inside the `size`-byte file and, with a structure
// record, exactly at one of its extents; for a chunked one every chunk
// written and the storage plausible for `total`. REQUIRES: the HDF5 lock is
// held.
void check_storage(OpenDataset& ds, uint64_t total, hid_t dcpl, uint64_t size,
                   const ArrayFileStructure* structure,
                   const std::string& record, const std::string& where) {
  ds.storage = H5Dget_storage_size(ds.dataset.get());
  if (ds.storage > size) {
    damaged(where + " claims more storage than the file holds");
  }
  if (total == 0) return;
  if (ds.layout == H5D_CONTIGUOUS) {
    ds.offset = H5Dget_offset(ds.dataset.get());
    if (ds.offset == HADDR_UNDEF) {
      damaged(where +
              " has no storage (its elements would read as fill values)");
    }
    if (ds.storage != total || ds.offset > size || total > size - ds.offset) {
      damaged(where + " lies beyond the end of the file (" +
              std::to_string(total) + " bytes at offset " +
              std::to_string(ds.offset) + ", file of " + std::to_string(size) +
              " bytes)");
    }
    if (structure) {
      const auto& ext = structure->extents;
      auto it = std::lower_bound(
          ext.begin(), ext.end(), static_cast<uint64_t>(ds.offset),
          [](const Extent& e, uint64_t off) { return e.offset < off; });
      if (it == ext.end() || it->offset != ds.offset || it->length != total) {
        damaged(where + " is not at an array extent recorded in " + record);
      }
    }
  } else if (ds.layout == H5D_CHUNKED) {
    int rank = H5Pget_chunk(dcpl, 0, nullptr);
    std::vector<hsize_t> chunk(static_cast<size_t>(std::max(rank, 0)));
    hsize_t written = 0;
    Hid space(H5Dget_space(ds.dataset.get()), H5Sclose);
    if (rank != static_cast<int>(ds.dims.size()) || !space.ok() ||
        H5Pget_chunk(dcpl, rank, chunk.data()) < 0 ||
        H5Dget_num_chunks(ds.dataset.get(), space.get(), &written) < 0) {
      fail(CKPT_ERROR_DATA_LOSS, where + " is damaged");
    }
    uint64_t expected = 1;
    for (size_t d = 0; d < chunk.size(); ++d) {
      if (chunk[d] == 0) damaged(where + " is damaged (empty chunks)");
      expected *= (ds.dims[d] + chunk[d] - 1) / chunk[d];  // <= elements
    }
    if (written != expected) {
      damaged(where + " has " + std::to_string(written) + " of its " +
              std::to_string(expected) +
              " chunks (the others would read as fill values)");
    }
    if (total / kMaxCompressionRatio > ds.storage) {
      damaged(where + " holds " + std::to_string(ds.storage) +
              " bytes of storage, too few for its " + std::to_string(total) +
              " bytes of elements");
    }
  }
}

// Throws DATA_LOSS at `where` unless `ds` has a type that holds `r`'s dtype
// and the shape `r` expects. REQUIRES: the HDF5 lock is held.
void check_dataset_fits(const OpenDataset& ds, const ArrayToRead& r,
                        const std::string& record,
                        const std::function<std::string()>& where) {
  if (!hdf5_type_matches(ds.type.get(), r.dtype)) {
    damaged(where() + " holds " + describe_hdf5_type(ds.type.get()) +
            ", which cannot hold the dtype " + dtype_name(r.dtype) +
            " recorded in " + record);
  }
  bool shape_ok = r.packed ? ds.dims.size() == 1 && r.offset <= ds.dims[0] &&
                                 r.count <= ds.dims[0] - r.offset
                           : ds.dims == to_hsize(r.dims);
  if (!shape_ok) {
    damaged(where() + " does not have the shape recorded in " + record);
  }
}

// Opens the dataset `name` of `h5` (external links refused by `lapl`) and
// checks its kind, type, dims and storage (see check_storage()). Throws
// DATA_LOSS at `where` for a missing, damaged or foreign dataset.
// REQUIRES: the HDF5 lock is held.
OpenDataset open_dataset(hid_t h5, hid_t lapl, const std::string& name,
                         uint64_t size, const ArrayFileStructure* structure,
                         const std::string& record, const std::string& where) {
  OpenDataset ds;
  if (name.empty() || name[0] != '/' || name.find('\0') != std::string::npos) {
    damaged(where + ": not a dataset path");
  }
  if (H5Lexists(h5, name.c_str(), lapl) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    damaged(where + " is missing");
  }
  ds.dataset = Hid(H5Dopen2(h5, name.c_str(), lapl), H5Dclose);
  if (!ds.dataset.ok()) fail(CKPT_ERROR_DATA_LOSS, where + " cannot be opened");
  Hid dcpl(H5Dget_create_plist(ds.dataset.get()), H5Pclose);
  if (!dcpl.ok()) fail(CKPT_ERROR_DATA_LOSS, where + " is damaged");
  check_dataset_kind(dcpl.get(), ds, where);
  ds.type = Hid(H5Dget_type(ds.dataset.get()), H5Tclose);
  Hid space(H5Dget_space(ds.dataset.get()), H5Sclose);
  int rank = space.ok() ? H5Sget_simple_extent_ndims(space.get()) : -1;
  H5S_class_t space_class =
      space.ok() ? H5Sget_simple_extent_type(space.get()) : H5S_NO_CLASS;
  if (!ds.type.ok() || rank < 0 ||
      (space_class != H5S_SIMPLE && space_class != H5S_SCALAR)) {
    fail(CKPT_ERROR_DATA_LOSS, where + " is damaged");
  }
  ds.dims.resize(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), ds.dims.data(), nullptr);
  std::vector<int64_t> shape;
  for (hsize_t d : ds.dims) {
    shape.push_back(
        d > static_cast<hsize_t>(INT64_MAX) ? -1 : static_cast<int64_t>(d));
  }
  uint64_t total = 0;
  if (!checked_size(shape, H5Tget_size(ds.type.get()), nullptr, &total)) {
    damaged(where + " is damaged (its shape is too large)");
  }
  check_storage(ds, total, dcpl.get(), size, structure, record, where);
  H5Eclear2(H5E_DEFAULT);
  return ds;
}

// Denies every external link: a dataset path must stay inside the file.
herr_t refuse_external_link(const char*, const char*, const char*, const char*,
                            unsigned*, hid_t, void*) {
  return -1;
}

}  // namespace

struct ArrayFileReader::State {
  Hid h5;
  Hid lapl;
  std::map<std::string, OpenDataset> open;
};

ArrayFileReader::ArrayFileReader(const std::string& file,
                                 const ArrayFileStructure* structure,
                                 const std::string& record,
                                 const std::string& what)
    : file_(file), record_(record), what_(what), structure_(structure) {
  const std::string name = what + ": the array file " + file;
  // O_NONBLOCK: opening a FIFO must not wait for a writer.
  fd_ = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0) {
    int err = errno;
    if (err == ENOENT) damaged(name + " is missing");
    if (err == ELOOP) {
      damaged(name + " is a symbolic link; ckpt reads only a regular file");
    }
    if (err == ENXIO || err == ENODEV) {
      damaged(name + " is not a regular file");
    }
    throw_os_error(err, what + ": cannot open the array file " + file);
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    int err = errno;
    ::close(fd_);
    throw_os_error(err, what + ": cannot read the array file " + file);
  }
  try {
    if (!S_ISREG(st.st_mode)) {
      damaged(name + " is not a regular file");
    }
    size_ = static_cast<uint64_t>(st.st_size);
    if (!structure) return;
    if (size_ != structure->size) {
      damaged(what + ": " + file + " is damaged (" + std::to_string(size_) +
              " bytes, " + record_ + " records " +
              std::to_string(structure->size) + ": truncated or overwritten)");
    }
    if (!extents_valid(structure->extents, size_)) {
      damaged(what + ": " + file +
              " is damaged (the array extents recorded in " + record_ +
              " are not "
              "sorted, overlap or lie outside the file)");
    }
    uint64_t hash = 0;
    if (!hash_outside(fd_, size_, structure->extents, &hash)) {
      if (errno == 0) {
        damaged(what + ": " + file + " is damaged (shorter than it was)");
      }
      throw_os_error(errno, what + ": cannot read " + file);
    }
    if (hash != structure->xxh3) {
      damaged(what + ": " + file + " is damaged (structure checksum mismatch)");
    }
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

ArrayFileReader::~ArrayFileReader() {
  if (state_) {
    Hdf5Lock lock;
    state_.reset();
  }
  if (fd_ >= 0) ::close(fd_);
}

void ArrayFileReader::check(const std::vector<ArrayToRead>& reads) {
  Hdf5Lock lock;
  if (!state_) {
    auto state = std::make_unique<State>();
    state->h5 =
        Hid(H5Fopen(file_.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    if (!state->h5.ok()) {
      fail(CKPT_ERROR_DATA_LOSS, what_ + ": cannot open the array file " +
                                     file_ +
                                     " (missing, truncated or not HDF5)");
    }
    // HDF5 opened the file by path: it must be the one checked above
    // (with the default sec2 driver, HDF5's handle is a file descriptor).
    void* handle = nullptr;
    struct stat ours {};
    struct stat theirs {};
    Hid fapl(H5Fget_access_plist(state->h5.get()), H5Pclose);
    if (fapl.ok() && H5Pget_driver(fapl.get()) == H5FD_SEC2 &&
        H5Fget_vfd_handle(state->h5.get(), H5P_DEFAULT, &handle) >= 0 &&
        handle && ::fstat(fd_, &ours) == 0 &&
        ::fstat(*static_cast<int*>(handle), &theirs) == 0 &&
        (ours.st_dev != theirs.st_dev || ours.st_ino != theirs.st_ino)) {
      damaged(what_ + ": the array file " + file_ +
              " was replaced while it was being opened");
    }
    H5Eclear2(H5E_DEFAULT);
    // A dataset access list is a link access list too: one serves
    // H5Lexists and H5Dopen2.
    state->lapl = Hid(H5Pcreate(H5P_DATASET_ACCESS), H5Pclose);
    if (!state->lapl.ok() ||
        H5Pset_elink_cb(state->lapl.get(), refuse_external_link, nullptr) < 0) {
      fail(CKPT_ERROR_INTERNAL, what_ + ": cannot read " + file_);
    }
    state_ = std::move(state);
  }
  for (const ArrayToRead& r : reads) {
    // Named only when something is wrong: a load may read 20,000 arrays.
    const std::function<std::string()> where = [&] {
      return what_ + ": key path " + r.key_path + ": dataset " + r.dataset +
             " in " + file_;
    };
    auto it = state_->open.find(r.dataset);
    if (it == state_->open.end()) {
      it = state_->open
               .emplace(
                   r.dataset,
                   open_dataset(state_->h5.get(), state_->lapl.get(), r.dataset,
                                size_, structure_, record_, where()))
               .first;
    }
    check_dataset_fits(it->second, r, record_, where);
  }
}

void ArrayFileReader::read(const std::vector<ArrayToRead>& reads,
                           const Progress& on_progress) {
  std::vector<DirectRead> direct;
  std::vector<size_t> read_through;  // indices read by HDF5 itself
  {
    Hdf5Lock lock;
    for (size_t index = 0; index < reads.size(); ++index) {
      const ArrayToRead& r = reads[index];
      auto it = state_ ? state_->open.find(r.dataset)
                       : std::map<std::string, OpenDataset>::iterator();
      if (!state_ || it == state_->open.end()) {
        throw Error(CKPT_ERROR_INTERNAL,
                    what_ + ": dataset " + r.dataset + " read unchecked");
      }
      const OpenDataset& ds = it->second;
      if (r.count == 0) {
        read_through.push_back(index);
        continue;
      }
      size_t item = ckpt::sdk::dtype_size(r.dtype);
      if (ds.offset != HADDR_UNDEF) {
        direct.push_back({ds.offset + r.offset * item, r.count * item,
                          r.destination, &r, index});
      } else {
        read_through_hdf5(ds, r,
                          what_ + ": key path " + r.key_path + ": dataset " +
                              r.dataset + " in " + file_);
        read_through.push_back(index);
      }
    }
  }
  if (on_progress) {
    for (size_t index : read_through) {
      on_progress(index, reads[index].count *
                             ckpt::sdk::dtype_size(reads[index].dtype));
    }
  }
  // The largest first, spread over the threads.
  std::sort(direct.begin(), direct.end(),
            [](const DirectRead& a, const DirectRead& b) {
              return a.nbytes > b.nbytes;
            });
  uint64_t total = 0;
  for (const DirectRead& d : direct) total += d.nbytes;
  parallel_for(direct.size(), threads_for(total), [&](size_t k) {
    const DirectRead& d = direct[k];
    if (d.file_offset > size_ || d.nbytes > size_ - d.file_offset) {
      damaged(what_ + ": key path " + d.array->key_path + ": " + file_ +
              " is truncated (dataset " + d.array->dataset +
              " ends beyond the end of the file)");
    }
    for (uint64_t done = 0; done < d.nbytes;) {
      const uint64_t n = std::min(kReadChunk, d.nbytes - done);
      if (!ckpt::sdk::pread_full(fd_, static_cast<char*>(d.destination) + done,
                                 n, d.file_offset + done)) {
        std::string reason =
            errno != 0 ? errno_text() : "unexpected end of file";
        damaged(what_ + ": key path " + d.array->key_path + ": cannot read " +
                file_ + ": " + reason);
      }
      done += n;
      if (on_progress) on_progress(d.index, done);
    }
  });
}

}  // namespace ckpt::pytree
