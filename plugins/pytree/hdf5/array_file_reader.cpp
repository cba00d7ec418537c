// The reader of the HDF5 array file (see array_file.h).
#include <ckpt/sdk/error.h>
#include <ckpt/sdk/files.h>
#include <ckpt/sdk/value.h>
#include <fcntl.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <map>

#include "hdf5/array_file.h"
#include "hdf5/hdf5_lock.h"
#include "hdf5/structure_checksum.h"
#include "records/tree_metadata.h"
#include "runtime/parallel.h"
#include "tree/cast.h"
#include "tree/dtypes.h"

namespace ckpt::pytree {

namespace {

using ckpt::sdk::Error;
using ckpt::sdk::throw_os_error;

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
            errno != 0 ? std::strerror(errno) : "unexpected end of file";
        damaged(what_ + ": key path " + d.array->key_path + ": cannot read " +
                file_ + ": " + reason);
      }
      done += n;
      if (on_progress) on_progress(d.index, done);
    }
  });
}

}  // namespace ckpt::pytree
