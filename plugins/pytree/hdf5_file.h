// The HDF5 array file: its structure is made and read through the HDF5
// library, under one process-wide lock (Debian's libhdf5 is the serial,
// non-thread-safe build), while the bulk bytes of contiguous datasets move
// with pwrite/pread outside that lock.
#ifndef CKPT_PLUGINS_PYTREE_HDF5_FILE_H_
#define CKPT_PLUGINS_PYTREE_HDF5_FILE_H_

#include <ckpt/abi.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ckpt_pytree {

// One dataset of a new array file. `dims` empty = a 0-d (scalar) dataset.
struct DatasetToWrite {
  std::string path;  // absolute HDF5 path; missing groups are created
  ckpt_dtype dtype = CKPT_DTYPE_INVALID;
  std::vector<int64_t> dims;
  const void* data = nullptr;  // C-contiguous elements, read during write
  uint64_t nbytes = 0;
  bool compressible = false;  // may be chunked/compressed per the options
};

// One row of the index dataset /_ckpt_index (see README.md).
struct IndexRow {
  std::string key;      // the leaf's HDF5-style path, e.g. "params/w"
  std::string dataset;  // where its elements are
  std::string dtype;    // ckpt dtype name
  uint64_t offset = 0;  // first element in `dataset`
  uint64_t count = 0;   // number of elements
  std::vector<int64_t> shape;
};

struct StorageOptions {
  std::string compression;  // "" or "gzip"
  int compression_level = 4;
  bool chunking = false;  // chunk large datasets even without compression
};

// Writes `file` (replacing it): every dataset, the index and the format
// attribute. Contiguous datasets are allocated under the HDF5 lock and
// filled with pwrite after it is released. Throws sdk::Error naming `what`.
void write_array_file(const std::string& file,
                      const std::vector<DatasetToWrite>& datasets,
                      const std::vector<IndexRow>& index,
                      const StorageOptions& options, unsigned file_mode,
                      const std::string& what);

// One array (or slice of a packed dataset) to read.
struct ArrayToRead {
  std::string dataset;
  ckpt_dtype dtype = CKPT_DTYPE_INVALID;
  // The dataset's expected shape; for a packed slice, ignored (the dataset
  // is 1-d and must hold offset + count elements).
  std::vector<int64_t> dims;
  bool packed = false;
  uint64_t offset = 0;          // in elements, packed only
  uint64_t count = 0;           // elements to read
  void* destination = nullptr;  // count * dtype size bytes
  std::string key_path;         // for error messages
};

// Reads every array of `reads` from `file`. Throws sdk::Error (DATA_LOSS
// for a missing, truncated or damaged file or dataset) naming `what` and
// the key path.
// `on_read(i)`, when set, is called (from this thread, without the lock)
// as soon as reads[i] is in memory, so that checking it can overlap the
// remaining reads.
void read_array_file(const std::string& file,
                     const std::vector<ArrayToRead>& reads,
                     const std::string& what,
                     const std::function<void(size_t)>& on_read = nullptr);

}  // namespace ckpt_pytree

#endif  // CKPT_PLUGINS_PYTREE_HDF5_FILE_H_
