#include "hdf5_file.h"

#include <ckpt/sdk/error.h>
#include <ckpt/sdk/value.h>
#include <fcntl.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "dtypes.h"

namespace ckpt_pytree {

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
};

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
  } else {
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
  pending.push_back({offset, ds.data, ds.nbytes});
  return dataset;
}

// The row layout of /_ckpt_index in memory.
struct IndexRecord {
  const char* key;
  const char* dataset;
  const char* dtype;
  uint64_t offset;
  uint64_t count;
  uint32_t ndim;
  int64_t shape[kIndexMaxRank];
};

void write_index(hid_t file, const std::vector<IndexRow>& rows,
                 const std::string& what) {
  Hid text = utf8_string_type();
  hsize_t rank_dims[1] = {kIndexMaxRank};
  Hid shape_type(H5Tarray_create2(H5T_STD_I64LE, 1, rank_dims), H5Tclose);
  Hid type(H5Tcreate(H5T_COMPOUND, sizeof(IndexRecord)), H5Tclose);
  H5Tinsert(type.get(), "key", HOFFSET(IndexRecord, key), text.get());
  H5Tinsert(type.get(), "dataset", HOFFSET(IndexRecord, dataset), text.get());
  H5Tinsert(type.get(), "dtype", HOFFSET(IndexRecord, dtype), text.get());
  H5Tinsert(type.get(), "offset", HOFFSET(IndexRecord, offset), H5T_STD_U64LE);
  H5Tinsert(type.get(), "count", HOFFSET(IndexRecord, count), H5T_STD_U64LE);
  H5Tinsert(type.get(), "ndim", HOFFSET(IndexRecord, ndim), H5T_STD_U32LE);
  H5Tinsert(type.get(), "shape", HOFFSET(IndexRecord, shape), shape_type.get());
  std::vector<IndexRecord> records(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    IndexRecord& r = records[i];
    r = IndexRecord{};
    r.key = rows[i].key.c_str();
    r.dataset = rows[i].dataset.c_str();
    r.dtype = rows[i].dtype.c_str();
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

}  // namespace

void write_array_file(const std::string& file,
                      const std::vector<DatasetToWrite>& datasets,
                      const std::vector<IndexRow>& index,
                      const StorageOptions& options, unsigned file_mode,
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
    set_string_attribute(h5.get(), kFormatAttribute, "ckpt.hdf5.v1");
    if (!h5.close()) fail(CKPT_ERROR_INTERNAL, what + ": cannot close " + file);
  }
  if (pending.empty()) return;
  fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    throw_os_error(errno, what + ": cannot reopen " + file);
  }
  for (const Pending& p : pending) {
    const char* data = static_cast<const char*>(p.data);
    uint64_t done = 0;
    while (done < p.nbytes) {
      size_t chunk =
          static_cast<size_t>(std::min<uint64_t>(p.nbytes - done, 1u << 30));
      ssize_t n = ::pwrite(fd, data + done, chunk,
                           static_cast<off_t>(p.file_offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        // A write that makes no progress is a full device.
        int err = n < 0 ? errno : ENOSPC;
        ::close(fd);
        throw_os_error(err, what + ": cannot write " + file);
      }
      done += static_cast<uint64_t>(n);
    }
  }
  if (::close(fd) != 0) {
    throw_os_error(errno, what + ": cannot write " + file);
  }
}

namespace {

struct OpenDataset {
  Hid dataset;
  Hid type;
  std::vector<hsize_t> dims;
  haddr_t offset = HADDR_UNDEF;  // contiguous storage; else read via HDF5
};

struct DirectRead {
  uint64_t file_offset;
  uint64_t nbytes;
  void* destination;
  const ArrayToRead* array;
  size_t index;
};

void read_through_hdf5(const OpenDataset& ds, const ArrayToRead& r,
                       const std::string& what) {
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
    fail(CKPT_ERROR_DATA_LOSS, what + ": key path " + r.key_path +
                                   ": cannot read dataset " + r.dataset);
  }
}

// Opens `r`'s dataset in `h5` and reads its type, dims and, when it is
// contiguous, its file offset. Throws DATA_LOSS at `where` (naming `file`)
// for a missing or damaged dataset. REQUIRES: the HDF5 lock is held.
OpenDataset open_dataset(hid_t h5, const ArrayToRead& r,
                         const std::string& file, const std::string& where) {
  OpenDataset ds;
  if (H5Lexists(h5, r.dataset.c_str(), H5P_DEFAULT) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    throw Error(CKPT_ERROR_DATA_LOSS, where + " is missing from " + file);
  }
  ds.dataset = Hid(H5Dopen2(h5, r.dataset.c_str(), H5P_DEFAULT), H5Dclose);
  if (!ds.dataset.ok()) fail(CKPT_ERROR_DATA_LOSS, where + " cannot be opened");
  ds.type = Hid(H5Dget_type(ds.dataset.get()), H5Tclose);
  Hid space(H5Dget_space(ds.dataset.get()), H5Sclose);
  int rank = space.ok() ? H5Sget_simple_extent_ndims(space.get()) : -1;
  if (!ds.type.ok() || rank < 0)
    fail(CKPT_ERROR_DATA_LOSS, where + " is damaged");
  ds.dims.resize(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), ds.dims.data(), nullptr);
  Hid dcpl(H5Dget_create_plist(ds.dataset.get()), H5Pclose);
  if (dcpl.ok() && H5Pget_layout(dcpl.get()) == H5D_CONTIGUOUS) {
    ds.offset = H5Dget_offset(ds.dataset.get());
  }
  H5Eclear2(H5E_DEFAULT);
  return ds;
}

// Throws DATA_LOSS at `where` unless `ds` has a type that holds `r`'s dtype
// and the shape `r` expects. REQUIRES: the HDF5 lock is held.
void check_dataset_fits(const OpenDataset& ds, const ArrayToRead& r,
                        const std::string& where) {
  if (!hdf5_type_matches(ds.type.get(), r.dtype)) {
    throw Error(CKPT_ERROR_DATA_LOSS,
                where + " holds " + describe_hdf5_type(ds.type.get()) +
                    ", which cannot hold the recorded dtype " +
                    dtype_name(r.dtype));
  }
  bool shape_ok = r.packed
                      ? ds.dims.size() == 1 && ds.dims[0] >= r.offset + r.count
                      : ds.dims == to_hsize(r.dims);
  if (!shape_ok) {
    throw Error(CKPT_ERROR_DATA_LOSS,
                where + " does not have the shape recorded in _METADATA");
  }
}

// Under the HDF5 lock: opens and checks the dataset of every read, reads
// through HDF5 those that are not contiguous, and lists them (and the empty
// ones) in `read_through`; the rest, to be read with pread, go to `direct`.
void read_under_hdf5_lock(const std::string& file,
                          const std::vector<ArrayToRead>& reads,
                          const std::string& what,
                          std::vector<DirectRead>& direct,
                          std::vector<size_t>& read_through) {
  Hdf5Lock lock;
  Hid h5(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!h5.ok()) {
    fail(CKPT_ERROR_DATA_LOSS, what + ": cannot open the array file " + file +
                                   " (missing, truncated or not HDF5)");
  }
  std::map<std::string, OpenDataset> open;
  for (size_t index = 0; index < reads.size(); ++index) {
    const ArrayToRead& r = reads[index];
    std::string where =
        what + ": key path " + r.key_path + ": dataset " + r.dataset;
    auto it = open.find(r.dataset);
    if (it == open.end()) {
      it =
          open.emplace(r.dataset, open_dataset(h5.get(), r, file, where)).first;
    }
    const OpenDataset& ds = it->second;
    check_dataset_fits(ds, r, where);
    if (r.count == 0) {
      read_through.push_back(index);
      continue;
    }
    size_t item = ckpt::sdk::dtype_size(r.dtype);
    if (ds.offset != HADDR_UNDEF) {
      direct.push_back({ds.offset + r.offset * item, r.count * item,
                        r.destination, &r, index});
    } else {
      read_through_hdf5(ds, r, what);
      read_through.push_back(index);
    }
  }
}

// Reads `d` from `fd` (a `size`-byte `file`) into its destination. On
// failure closes `fd` and throws DATA_LOSS naming `what` and the key path.
void pread_one(int fd, uint64_t size, const DirectRead& d,
               const std::string& file, const std::string& what) {
  if (d.file_offset > size || d.nbytes > size - d.file_offset) {
    ::close(fd);
    throw Error(CKPT_ERROR_DATA_LOSS,
                what + ": key path " + d.array->key_path + ": " + file +
                    " is truncated (dataset " + d.array->dataset +
                    " ends beyond the end of the file)");
  }
  char* out = static_cast<char*>(d.destination);
  uint64_t done = 0;
  while (done < d.nbytes) {
    size_t chunk =
        static_cast<size_t>(std::min<uint64_t>(d.nbytes - done, 1u << 30));
    ssize_t n = ::pread(fd, out + done, chunk,
                        static_cast<off_t>(d.file_offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string reason = n < 0 ? errno_text() : "unexpected end of file";
      ::close(fd);
      throw Error(CKPT_ERROR_DATA_LOSS,
                  what + ": key path " + d.array->key_path + ": cannot read " +
                      file + ": " + reason);
    }
    done += static_cast<uint64_t>(n);
  }
}

// Reads every entry of `direct` from `file` with pread, outside the HDF5
// lock, calling `on_read` (when set) after each.
void read_direct(const std::string& file, const std::vector<DirectRead>& direct,
                 const std::string& what,
                 const std::function<void(size_t)>& on_read) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    int err = errno;
    if (fd >= 0) ::close(fd);
    throw_os_error(err, what + ": cannot read " + file);
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  for (const DirectRead& d : direct) {
    pread_one(fd, size, d, file, what);
    if (on_read) on_read(d.index);
  }
  ::close(fd);
}

}  // namespace

void read_array_file(const std::string& file,
                     const std::vector<ArrayToRead>& reads,
                     const std::string& what,
                     const std::function<void(size_t)>& on_read) {
  std::vector<DirectRead> direct;
  std::vector<size_t> read_through;  // indices read by HDF5 itself
  read_under_hdf5_lock(file, reads, what, direct, read_through);
  if (on_read) {
    for (size_t index : read_through) on_read(index);
  }
  if (direct.empty()) return;
  read_direct(file, direct, what, on_read);
}

}  // namespace ckpt_pytree
