// What every use of the HDF5 library in the plugin shares: the one
// process-wide lock (Debian's libhdf5 is the serial, non-thread-safe
// build), identifiers closed at scope end, and HDF5's error stack turned
// into sdk::Error.
#ifndef CKPT_PLUGINS_PYTREE_HDF5_HDF5_LOCK_H_
#define CKPT_PLUGINS_PYTREE_HDF5_HDF5_LOCK_H_

#include <ckpt/abi.h>
#include <hdf5.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace ckpt::pytree {

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
std::string hdf5_message();

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

// Throws `message` with the HDF5 error behind it. A failure to write
// (`code` internal) that comes from the OS, such as a full disk, takes the
// code of its errno instead; a failure to read keeps its code (a file that
// is not HDF5 is data loss, whatever HDF5 probed on the way).
[[noreturn]] void fail(ckpt_error_code code, const std::string& message);

// fail(CKPT_ERROR_INTERNAL, what) when `status` is negative.
void check(herr_t status, const std::string& what);

inline std::vector<hsize_t> to_hsize(const std::vector<int64_t>& dims) {
  return std::vector<hsize_t>(dims.begin(), dims.end());
}

}  // namespace ckpt::pytree

#endif  // CKPT_PLUGINS_PYTREE_HDF5_HDF5_LOCK_H_
