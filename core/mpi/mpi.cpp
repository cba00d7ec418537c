#include <ckpt/errors.h>
#include <ckpt/mpi.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace ckpt {

namespace {

// Bytes per MPI call: counts are ints.
constexpr uint64_t kChunk = uint64_t{1} << 30;

std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) {
    return "MPI error " + std::to_string(code);
  }
  return std::string(text, static_cast<size_t>(length));
}

void check(int code, const char* what) {
  if (code != MPI_SUCCESS) {
    throw InternalError(std::string("ckpt-mpi: ") + what +
                        " failed: " + mpi_error_text(code));
  }
}

class MpiCollectives final : public Collectives {
 public:
  explicit MpiCollectives(MPI_Comm comm) {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (!initialized || finalized) {
      throw InvalidArgumentError(
          "ckpt::mpi_collectives: MPI is not initialized (call MPI_Init or "
          "MPI_Init_thread first, and destroy ckpt's Contexts before "
          "MPI_Finalize)");
    }
    if (comm == MPI_COMM_NULL) {
      throw InvalidArgumentError(
          "ckpt::mpi_collectives: the communicator is MPI_COMM_NULL");
    }
    check(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup");
    // Errors come back as codes, and become ckpt errors.
    check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN),
          "MPI_Comm_set_errhandler");
    check(MPI_Comm_rank(comm_, &index_), "MPI_Comm_rank");
    check(MPI_Comm_size(comm_, &count_), "MPI_Comm_size");
    int provided = MPI_THREAD_SINGLE;
    check(MPI_Query_thread(&provided), "MPI_Query_thread");
    any_thread_ = provided >= MPI_THREAD_SERIALIZED;
  }

  ~MpiCollectives() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }

  int process_index() const override { return index_; }
  int process_count() const override { return count_; }
  bool callable_from_any_thread() const override { return any_thread_; }

  void barrier() override {
    std::lock_guard<std::mutex> lock(mutex_);
    check(MPI_Barrier(comm_), "MPI_Barrier");
  }

  std::vector<std::string> all_gather(const std::string& bytes) override {
    std::lock_guard<std::mutex> lock(mutex_);
    uint64_t mine = bytes.size();
    std::vector<uint64_t> sizes(static_cast<size_t>(count_));
    check(MPI_Allgather(&mine, 1, MPI_UINT64_T, sizes.data(), 1, MPI_UINT64_T,
                        comm_),
          "MPI_Allgather");
    std::vector<std::string> out(static_cast<size_t>(count_));
    uint64_t total = 0;
    for (uint64_t s : sizes) total += s;
    if (total <= static_cast<uint64_t>(INT_MAX)) {
      // One call: every size and offset fits an int.
      std::vector<int> counts, offsets;
      int offset = 0;
      for (uint64_t s : sizes) {
        counts.push_back(static_cast<int>(s));
        offsets.push_back(offset);
        offset += static_cast<int>(s);
      }
      std::string all(static_cast<size_t>(total), '\0');
      check(MPI_Allgatherv(bytes.data(), static_cast<int>(mine), MPI_BYTE,
                           all.data(), counts.data(), offsets.data(), MPI_BYTE,
                           comm_),
            "MPI_Allgatherv");
      for (size_t p = 0; p < out.size(); ++p) {
        out[p] = all.substr(static_cast<size_t>(offsets[p]),
                            static_cast<size_t>(counts[p]));
      }
      return out;
    }
    // 2 GiB and more in all: each process's bytes from it, in turn.
    for (int root = 0; root < count_; ++root) {
      std::string& piece = out[static_cast<size_t>(root)];
      if (root == index_) {
        piece = bytes;
      } else {
        piece.resize(static_cast<size_t>(sizes[static_cast<size_t>(root)]));
      }
      broadcast_bytes(piece.data(), piece.size(), root);
    }
    return out;
  }

  std::string broadcast(const std::string& bytes, int root) override {
    if (root < 0 || root >= count_) {
      throw InvalidArgumentError("ckpt-mpi: broadcast from process " +
                                 std::to_string(root) + " of " +
                                 std::to_string(count_));
    }
    std::lock_guard<std::mutex> lock(mutex_);
    uint64_t size = bytes.size();
    check(MPI_Bcast(&size, 1, MPI_UINT64_T, root, comm_), "MPI_Bcast");
    std::string out = root == index_ ? bytes : std::string();
    out.resize(static_cast<size_t>(size));
    broadcast_bytes(out.data(), out.size(), root);
    return out;
  }

 private:
  // Broadcasts `size` bytes at `data` from `root`, in int-sized calls.
  void broadcast_bytes(char* data, uint64_t size, int root) {
    for (uint64_t done = 0; done < size;) {
      const uint64_t n = std::min(kChunk, size - done);
      check(MPI_Bcast(data + done, static_cast<int>(n), MPI_BYTE, root, comm_),
            "MPI_Bcast");
      done += n;
    }
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int index_ = 0;
  int count_ = 1;
  bool any_thread_ = false;
  std::mutex mutex_;
};

}  // namespace

std::shared_ptr<Collectives> mpi_collectives(MPI_Comm comm) {
  return std::make_shared<MpiCollectives>(comm);
}

}  // namespace ckpt
