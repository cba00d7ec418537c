// The HDF5 array file: its structure is made and read through the HDF5
// library, under one process-wide lock (Debian's libhdf5 is the serial,
// non-thread-safe build), while the bulk bytes of contiguous datasets move
// with pwrite/pread outside that lock.
#ifndef CKPT_PLUGINS_PYTREE_HDF5_ARRAY_FILE_H_
#define CKPT_PLUGINS_PYTREE_HDF5_ARRAY_FILE_H_

#include <ckpt/abi.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ckpt::pytree {

// Part of a virtual dataset: its box at `offset` of shape `shape` is the
// whole dataset `dataset` of `file`, a file name relative to the virtual
// dataset's file (HDF5 looks for it in the same folder).
struct VirtualSource {
  std::string file;
  std::string dataset;
  std::vector<int64_t> offset;
  std::vector<int64_t> shape;
};

// Bytes in memory.
struct Span {
  const void* data = nullptr;
  uint64_t nbytes = 0;
};

// One dataset of a new array file. `dims` empty = a 0-d (scalar) dataset.
struct DatasetToWrite {
  std::string path;  // absolute HDF5 path; missing groups are created
  ckpt_dtype dtype = CKPT_DTYPE_INVALID;
  std::vector<int64_t> dims;
  const void* data = nullptr;  // C-contiguous elements, read during write
  uint64_t nbytes = 0;
  // Not empty: the elements are these, back to back (`data` unused;
  // contiguous layout only).
  std::vector<Span> pieces;
  bool compressible = false;  // may be chunked/compressed per the options
  // Not empty: a virtual dataset over these (`data` unused), for readers
  // other than ckpt (ckpt reads the sources' files itself).
  std::vector<VirtualSource> sources;
};

// One row of the index dataset /_ckpt_index (see README.md).
struct IndexRow {
  std::string key;  // the leaf's HDF5-style path, e.g. "params/w"
  ckpt_dtype dtype = CKPT_DTYPE_INVALID;
  // In the dtype's packed dataset, from element `offset`; else in the
  // dataset at the key path.
  bool packed = false;
  uint64_t offset = 0;
  uint64_t count = 0;  // number of elements
  std::vector<int64_t> shape;
};

struct StorageOptions {
  std::string compression;  // "" or "gzip"
  int compression_level = 4;
  bool chunking = false;  // chunk large datasets even without compression
};

// One byte range of the array file.
struct Extent {
  uint64_t offset = 0;
  uint64_t length = 0;
};

// The array file's structure record (_METADATA's
// "ckpt_array_file_structure", see README.md): its size, the extents that
// hold the elements of contiguous datasets (sorted, non-overlapping, none
// empty) and the XXH3-64 of every other byte of the file.
struct ArrayFileStructure {
  uint64_t size = 0;
  std::vector<Extent> extents;
  uint64_t xxh3 = 0;
};

// Writes `file` (replacing it): every dataset, the index and the format
// attribute. Contiguous datasets are allocated under the HDF5 lock and
// filled with pwrite after it is released. Returns the structure record of
// the complete file. Throws sdk::Error naming `what`.
ArrayFileStructure write_array_file(const std::string& file,
                                    const std::vector<DatasetToWrite>& datasets,
                                    const std::vector<IndexRow>& index,
                                    const StorageOptions& options,
                                    unsigned file_mode,
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
  void* destination = nullptr;  // count * dtype size bytes; set before read()
  std::string key_path;         // for error messages
};

// Reading one array file. Every failure is sdk::Error naming `what` and
// the file: DATA_LOSS for a missing, truncated, damaged or foreign file or
// dataset.
class ArrayFileReader {
 public:
  // Opens `file` without following a symbolic link and without blocking
  // (a FIFO), requires a regular file and, when `structure` is set, checks
  // the file's size and structure checksum against it: all before any HDF5
  // call sees the file (Debian's libhdf5 crashes on some damaged files).
  // `record` names the file the structure and the datasets' shapes were
  // read from (_TREE_INDEX, _METADATA), for messages.
  ArrayFileReader(const std::string& file, const ArrayFileStructure* structure,
                  const std::string& record, const std::string& what);
  ~ArrayFileReader();
  ArrayFileReader(const ArrayFileReader&) = delete;
  ArrayFileReader& operator=(const ArrayFileReader&) = delete;

  // Opens the dataset of every read and checks it before any memory is
  // allocated for it: ckpt's kind of dataset (no virtual or external
  // storage, no foreign filters), a type holding the dtype, the expected
  // shape (a packed slice inside the dataset), storage inside the file
  // and, with a structure record, at a recorded extent. Destinations are
  // not used.
  void check(const std::vector<ArrayToRead>& reads);

  // Called as the bytes of reads[read] arrive: its first `done` bytes are
  // in memory.
  using Progress = std::function<void(size_t read, uint64_t done)>;

  // Reads every array of `reads` (as passed to check()) into its
  // destination, the bytes of contiguous datasets in chunks and on several
  // threads when there are many (parallel.h). `on_progress`, when set, is
  // called after each chunk, on the thread that read it (so possibly
  // concurrently for different reads, never under the HDF5 lock), so that
  // checking the bytes overlaps the remaining reads while they are still
  // in that core's caches.
  void read(const std::vector<ArrayToRead>& reads,
            const Progress& on_progress = nullptr);

  struct State;  // HDF5 handles and the opened datasets (hdf5_file.cpp)

 private:
  std::string file_;
  std::string record_;
  std::string what_;
  int fd_ = -1;
  uint64_t size_ = 0;
  const ArrayFileStructure* structure_ = nullptr;
  std::unique_ptr<State> state_;
};

}  // namespace ckpt::pytree

#endif  // CKPT_PLUGINS_PYTREE_HDF5_ARRAY_FILE_H_
