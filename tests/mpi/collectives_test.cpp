// ckpt-mpi's collectives (ckpt/mpi.h) and the Context's multi-process
// options, on every process of the run (tests/mpi/mpi_main.cpp).
#include <ckpt/context.h>
#include <ckpt/errors.h>
#include <ckpt/mpi.h>
#include <mpi.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;

namespace {

int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

int world_size() {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

// Bytes only process `p` can make: its index, then a pattern, `n` long.
std::string bytes_of(int p, size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    s[i] = static_cast<char>((i * 31 + static_cast<size_t>(p) * 7) & 0xff);
  }
  if (n > 0) s[0] = static_cast<char>(p);
  return s;
}

// A folder every process sees: named by process 0, broadcast.
fs::path shared_scratch(ckpt::Collectives& c, const std::string& tag) {
  std::string name;
  if (c.process_index() == 0) {
    name = (fs::temp_directory_path() /
            ("ckpt-mpi-" + tag + "-" + std::to_string(::getpid())))
               .string();
    fs::remove_all(name);
    fs::create_directories(name);
  }
  return c.broadcast(name, 0);
}

}  // namespace

TEST_CASE("mpi collectives know this process and the job", "[mpi]") {
  auto c = ckpt::mpi_collectives(MPI_COMM_WORLD);
  CHECK(c->process_index() == world_rank());
  CHECK(c->process_count() == world_size());
  CHECK(c->callable_from_any_thread());
}

TEST_CASE("mpi barrier: every process's file exists after it", "[mpi]") {
  auto c = ckpt::mpi_collectives(MPI_COMM_WORLD);
  const fs::path dir = shared_scratch(*c, "barrier");
  std::ofstream(dir / std::to_string(c->process_index())) << "here";
  c->barrier();
  for (int p = 0; p < c->process_count(); ++p) {
    CHECK(fs::exists(dir / std::to_string(p)));
  }
  c->barrier();
  if (c->process_index() == 0) fs::remove_all(dir);
}

TEST_CASE("mpi all_gather: every process's bytes, of any size, in order",
          "[mpi]") {
  auto c = ckpt::mpi_collectives(MPI_COMM_WORLD);
  const int me = c->process_index();
  // Process 0 sends nothing; the others more with each index.
  for (size_t scale : {size_t{0}, size_t{1}, size_t{1000}, size_t{1} << 20}) {
    const std::vector<std::string> all =
        c->all_gather(bytes_of(me, scale * static_cast<size_t>(me)));
    REQUIRE(all.size() == static_cast<size_t>(c->process_count()));
    for (int p = 0; p < c->process_count(); ++p) {
      CHECK(all[static_cast<size_t>(p)] ==
            bytes_of(p, scale * static_cast<size_t>(p)));
    }
  }
}

TEST_CASE("mpi broadcast: the root's bytes on every process", "[mpi]") {
  auto c = ckpt::mpi_collectives(MPI_COMM_WORLD);
  for (int root = 0; root < c->process_count(); ++root) {
    for (size_t n : {size_t{0}, size_t{17}, size_t{3} << 20}) {
      // Non-roots pass bytes of their own, which must be ignored.
      const std::string got =
          c->broadcast(bytes_of(c->process_index(), n + 1), root);
      CHECK(got == bytes_of(root, n + 1));
    }
  }
  CHECK_THROWS_AS(c->broadcast("x", c->process_count()),
                  ckpt::InvalidArgumentError);
}

TEST_CASE("mpi collectives work from a background thread", "[mpi]") {
  auto c = ckpt::mpi_collectives(MPI_COMM_WORLD);
  std::vector<std::string> all;
  std::thread worker(
      [&] { all = c->all_gather(bytes_of(c->process_index(), 64)); });
  worker.join();
  REQUIRE(all.size() == static_cast<size_t>(c->process_count()));
  for (int p = 0; p < c->process_count(); ++p) {
    CHECK(all[static_cast<size_t>(p)] == bytes_of(p, 64));
  }
}

TEST_CASE("mpi collectives have a communicator of their own", "[mpi]") {
  // A message the host left pending on MPI_COMM_WORLD is not taken by
  // ckpt's collectives, and is still there for the host after them.
  auto c = ckpt::mpi_collectives(MPI_COMM_WORLD);
  const int me = c->process_index();
  const int n = c->process_count();
  int sent = 1000 + me, received = -1;
  MPI_Request request;
  MPI_Isend(&sent, 1, MPI_INT, (me + 1) % n, 42, MPI_COMM_WORLD, &request);
  const std::vector<std::string> all = c->all_gather(std::string(4, 'a'));
  CHECK(all.size() == static_cast<size_t>(n));
  MPI_Recv(&received, 1, MPI_INT, (me + n - 1) % n, 42, MPI_COMM_WORLD,
           MPI_STATUS_IGNORE);
  MPI_Wait(&request, MPI_STATUS_IGNORE);
  CHECK(received == 1000 + (me + n - 1) % n);
}

TEST_CASE("a Context takes the process index and count from the collectives",
          "[mpi]") {
  ckpt::ContextOptions options;
  options.multiprocessing.collectives = ckpt::mpi_collectives(MPI_COMM_WORLD);
  options.multiprocessing.primary_host = world_size() - 1;
  ckpt::Context context(options);
  CHECK(context.process_index() == world_rank());
  CHECK(context.process_count() == world_size());
  CHECK(context.is_primary_host() == (world_rank() == world_size() - 1));

  ckpt::ContextOptions bad = options;
  bad.multiprocessing.primary_host = world_size();
  CHECK_THROWS_AS(ckpt::Context(bad), ckpt::InvalidArgumentError);
}

TEST_CASE("mpi_collectives refuses MPI_COMM_NULL", "[mpi]") {
  CHECK_THROWS_AS(ckpt::mpi_collectives(MPI_COMM_NULL),
                  ckpt::InvalidArgumentError);
}
