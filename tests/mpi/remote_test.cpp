// A Checkpointer's remote tier in a job of many processes, on S3 (moto's
// server, which tests/s3/s3_env.py starts around mpirun): every process
// uploads the files it wrote, the primary commits each step once all are
// up, and a job restarted on empty disks loads from the store.
#include <ckpt/checkpointer.h>
#include <ckpt/context.h>
#include <ckpt/errors.h>
#include <ckpt/remote.h>
#include <ckpt/s3.h>
#include <ckpt/value.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "mpi_util.h"

using namespace mpi_test;

namespace {

std::string env(const char* name) {
  const char* value = std::getenv(name);
  if (!value) {
    throw std::runtime_error(
        std::string(name) + " is not set: run mpirun under tests/s3/s3_env.py");
  }
  return value;
}

// A prefix of the bucket for one test case, the same on every process.
std::shared_ptr<ckpt::RemoteStore> job_store(const std::string& tag) {
  const std::string prefix =
      world()->broadcast("mpi-" + tag + "-" + std::to_string(::getpid()) + "-" +
                             std::to_string(count()),
                         0);
  ckpt::S3Options options;
  options.endpoint = env("CKPT_TEST_S3_ENDPOINT");
  options.initial_backoff_seconds = 0.01;
  options.max_backoff_seconds = 0.05;
  return ckpt::s3_store("s3://" + env("CKPT_TEST_S3_BUCKET") + "/" + prefix,
                        options);
}

// A store that notes the keys this process writes, and refuses those
// starting with `refused` (when not empty).
class NotingStore final : public ckpt::RemoteStore {
 public:
  NotingStore(std::shared_ptr<ckpt::RemoteStore> inner, std::string refused)
      : inner_(std::move(inner)), refused_(std::move(refused)) {}
  std::string url() const override { return inner_->url(); }
  void put_file(const std::string& key, const std::string& path) override {
    if (!refused_.empty() && key.rfind(refused_, 0) == 0) {
      throw ckpt::IOError("PUT " + url() + "/" + key + " refused by the test");
    }
    inner_->put_file(key, path);
    std::lock_guard<std::mutex> lock(mutex_);
    written_.push_back(key);
  }
  bool put_if_absent(const std::string& key, const std::string& b) override {
    const bool put = inner_->put_if_absent(key, b);
    std::lock_guard<std::mutex> lock(mutex_);
    if (put) written_.push_back(key);
    return put;
  }
  std::string get(const std::string& key, int64_t offset,
                  int64_t length) override {
    return inner_->get(key, offset, length);
  }
  void get_file(const std::string& key, const std::string& path) override {
    inner_->get_file(key, path);
  }
  std::vector<ckpt::RemoteObject> list(const std::string& prefix) override {
    return inner_->list(prefix);
  }
  void remove(const std::string& key) override { inner_->remove(key); }
  std::vector<std::string> written() {
    std::lock_guard<std::mutex> lock(mutex_);
    return written_;
  }

 private:
  std::shared_ptr<ckpt::RemoteStore> inner_;
  std::string refused_;
  std::mutex mutex_;
  std::vector<std::string> written_;
};

const ckpt::Shape kGlobal = {16, 3};

// Rows of `global` split over the processes; row r holds step * 100 + r.
ckpt::Array rows_of(int64_t step, const ckpt::Box& box) {
  std::vector<float> values;
  for (int64_t r = 0; r < box.shape[0]; ++r) {
    for (int64_t c = 0; c < box.shape[1]; ++c) {
      values.push_back(static_cast<float>(step * 100 + box.offset[0] + r));
    }
  }
  return ckpt::Array::from<float>(values, box.shape);
}

ckpt::Box my_rows() { return ckpt::split_evenly(kGlobal, 0, count())[me()]; }

ckpt::Value tree_of(int64_t step) {
  ckpt::ShardedArray w{ckpt::DType::kFloat32, kGlobal, {}, nullptr};
  w.shards.push_back({my_rows().offset, rows_of(step, my_rows())});
  return ckpt::Value::dict({{"w", std::move(w)}, {"step", step}});
}

ckpt::Value abstract_tree() {
  return ckpt::Value::dict(
      {{"w", ckpt::ShardedSpec{ckpt::DType::kFloat32, kGlobal, {my_rows()}}},
       {"step", int64_t{0}}});
}

std::vector<int64_t> steps_in(ckpt::RemoteStore& store) {
  std::vector<int64_t> out;
  for (const std::string& name : ckpt::list_remote_checkpoints(store)) {
    out.push_back(std::stoll(name));
  }
  return out;
}

// Whether `key` holds "process_<p>" for a process p other than `me`.
bool names_another_process(const std::string& key, int me, int count) {
  for (int p = 0; p < count; ++p) {
    const std::string tag = "process_" + std::to_string(p) + ".";
    if (p != me && key.find(tag) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE(
    "every process uploads the files it wrote; a job on empty disks loads "
    "the steps from the store",
    "[mpi][remote]") {
  auto s3 = job_store("roundtrip");
  auto noting = std::make_shared<NotingStore>(s3, "");
  ckpt::CheckpointerOptions options;
  options.remote.store = noting;
  {
    SharedFolder shared("remote");
    ckpt::Context context(mp_options());
    ckpt::Checkpointer checkpointer(shared.path() / "run", options);
    for (int64_t step = 1; step <= 3; ++step) {
      checkpointer.save_pytree(step, tree_of(step));
    }
    checkpointer.close();
    for (const ckpt::CheckpointStep& c : checkpointer.checkpoints()) {
      INFO("step " << c.step);
      CHECK(c.remote);
      CHECK(c.local);
    }
  }
  // Each process wrote its own arrays and nobody else's; the primary also
  // what was written for all, and the records.
  const std::vector<std::string> written = noting->written();
  bool own_arrays = false;
  for (const std::string& key : written) {
    INFO(key);
    CHECK_FALSE(names_another_process(key, me(), count()));
    own_arrays |=
        key.find("process_" + std::to_string(me()) + ".") != std::string::npos;
    if (me() != 0)
      CHECK(key.find(ckpt::kRemoteCommitRecord) == std::string::npos);
  }
  CHECK((own_arrays || count() == 1));
  CHECK(steps_in(*s3) == std::vector<int64_t>{1, 2, 3});
  // The record names every process's file.
  const ckpt::RemoteCheckpoint step3 = ckpt::open_remote_checkpoint(*s3, "3");
  for (int p = 0; p < count() && count() > 1; ++p) {
    bool named = false;
    for (const ckpt::RemoteFile& f : step3.files) {
      named |= f.path.find("arrays.process_" + std::to_string(p) + ".") !=
               std::string::npos;
    }
    CHECK(named);
  }
  world()->barrier();
  // Another job, on disks that have never seen the run.
  SharedFolder empty("remote-restart");
  ckpt::Context context(mp_options());
  ckpt::CheckpointerOptions plain;
  plain.remote.store = s3;
  ckpt::Checkpointer restarted(empty.path() / "run", plain);
  const std::optional<ckpt::CheckpointStep> latest = restarted.latest();
  REQUIRE(latest);
  CHECK(latest->step == 3);
  CHECK_FALSE(latest->local);
  CHECK(latest->remote);
  const ckpt::Value abstract = abstract_tree();
  const ckpt::Value loaded = restarted.load_pytree(std::nullopt, &abstract);
  CHECK(loaded.at("step").as_int() == 3);
  const ckpt::ShardedArray& w = loaded.at("w").as_sharded_array();
  REQUIRE(w.shards.size() == 1);
  CHECK(w.shards[0].data == rows_of(3, my_rows()));
  restarted.close();
}

TEST_CASE("steps pruned while their parts go up leave nothing in the store",
          "[mpi][remote]") {
  auto s3 = job_store("pruned");
  ckpt::CheckpointerOptions options;
  options.remote.store = s3;
  options.remote.max_pending_uploads = 4;
  options.preservation_policy = ckpt::LatestN(1);
  SharedFolder shared("remote-pruned");
  ckpt::Context context(mp_options());
  {
    ckpt::Checkpointer checkpointer(shared.path() / "run", options);
    for (int64_t step = 1; step <= 6; ++step) {
      checkpointer.save_pytree(step, tree_of(step));
    }
    checkpointer.close();
  }
  CHECK(steps_in(*s3) == std::vector<int64_t>{6});
  const ckpt::RemoteCheckpoint kept = ckpt::open_remote_checkpoint(*s3, "6");
  for (const ckpt::RemoteObject& o : s3->list("")) {
    INFO(o.key);
    CHECK((o.key == std::string("6/") + ckpt::kRemoteCommitRecord ||
           o.key.rfind("6/" + kept.attempt + "/", 0) == 0));
  }
  world()->barrier();
}

TEST_CASE(
    "a part that fails on one process fails the step on every process; the "
    "next run uploads it",
    "[mpi][remote]") {
  auto s3 = job_store("failed");
  SharedFolder shared("remote-failed");
  ckpt::Context context(mp_options());
  {
    // The last process cannot write step 2's files.
    ckpt::CheckpointerOptions options;
    options.remote.store =
        std::make_shared<NotingStore>(s3, me() == count() - 1 ? "2/" : "");
    ckpt::Checkpointer checkpointer(shared.path() / "run", options);
    checkpointer.save_pytree(1, tree_of(1));
    checkpointer.save_pytree(2, tree_of(2));
    try {
      checkpointer.close();
      FAIL("close() did not report the failed upload");
    } catch (const ckpt::Error& e) {
      CHECK_THAT(e.what(), Catch::Contains("/2/") &&
                               Catch::Contains("refused by the test"));
    }
  }
  CHECK(steps_in(*s3) == std::vector<int64_t>{1});
  CHECK(s3->list("2/").empty());
  world()->barrier();
  // The next run finds step 2 only local, and uploads it.
  ckpt::CheckpointerOptions options;
  options.remote.store = s3;
  {
    ckpt::Checkpointer again(shared.path() / "run", options);
    again.close();
  }
  CHECK(steps_in(*s3) == std::vector<int64_t>{1, 2});
  world()->barrier();
}
