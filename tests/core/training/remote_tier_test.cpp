// The Checkpointer's remote tier (RemoteTierOptions), over a directory
// store: uploads behind the local disk, steps in both places, restarts on
// an empty disk, pruning in both places, local copies dropped once
// persisted, failed uploads finished by the next run, two writers, a step
// saved again during its upload.
#include <ckpt/checkpointer.h>
#include <ckpt/errors.h>
#include <ckpt/remote.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <mutex>

#include "test_util.h"

using namespace ckpt;
using namespace ckpt::test;

namespace {

Value tree_of(int64_t step) {
  return Value::dict({{"w", Array::from(std::vector<int64_t>(1000, step))},
                      {"step", Value(step)}});
}

CheckpointerOptions remote_options(std::shared_ptr<RemoteStore> store) {
  CheckpointerOptions options;
  options.remote.store = std::move(store);
  return options;
}

// step: (local, remote) for each step the Checkpointer lists.
std::map<int64_t, std::pair<bool, bool>> places(const Checkpointer& c) {
  std::map<int64_t, std::pair<bool, bool>> out;
  for (const CheckpointStep& s : c.checkpoints()) {
    out[s.step] = {s.local, s.remote};
  }
  return out;
}

std::vector<std::string> remote_steps(RemoteStore& store) {
  std::vector<std::string> out;
  for (const RemoteObject& o : store.list("")) {
    const size_t slash = o.key.find('/');
    if (o.key.substr(slash + 1) == kRemoteCommitRecord) {
      out.push_back(o.key.substr(0, slash));
    }
  }
  return out;
}

// A store that fails its first `failures` uploads of files, then works.
class FlakyStore : public RemoteStore {
 public:
  FlakyStore(std::shared_ptr<RemoteStore> inner, int failures)
      : inner_(std::move(inner)), failures_(failures) {}
  std::string url() const override { return inner_->url(); }
  void put_file(const std::string& key, const std::string& path) override {
    if (failures_-- > 0) throw IOError("injected: cannot reach " + key);
    inner_->put_file(key, path);
  }
  bool put_if_absent(const std::string& key, const std::string& b) override {
    return inner_->put_if_absent(key, b);
  }
  std::string get(const std::string& key, int64_t o, int64_t n) override {
    return inner_->get(key, o, n);
  }
  void get_file(const std::string& key, const std::string& path) override {
    inner_->get_file(key, path);
  }
  std::vector<RemoteObject> list(const std::string& prefix) override {
    return inner_->list(prefix);
  }
  void remove(const std::string& key) override { inner_->remove(key); }

 private:
  std::shared_ptr<RemoteStore> inner_;
  std::atomic<int> failures_;
};

// A store whose first file upload waits until the test lets it go.
class GatedStore : public FlakyStore {
 public:
  explicit GatedStore(std::shared_ptr<RemoteStore> inner)
      : FlakyStore(std::move(inner), 0) {}
  void put_file(const std::string& key, const std::string& path) override {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!held_) {
        held_ = true;
        changed_.notify_all();
        changed_.wait(lock, [&] { return released_; });
      }
    }
    FlakyStore::put_file(key, path);
  }
  void wait_until_held() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return held_; });
  }
  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool held_ = false;
  bool released_ = false;
};

}  // namespace

TEST_CASE("steps go up behind the local disk and are listed in both",
          "[remote]") {
  TempDir dir;
  auto store = directory_store((dir / "store").string());
  {
    Checkpointer c(dir / "local", remote_options(store));
    for (int64_t step : {1, 2, 3}) {
      c.save_pytree(step, tree_of(step), nlohmann::json{{"loss", step}});
    }
    c.wait_for_uploads();
    CHECK(remote_steps(*store) == std::vector<std::string>{"1", "2", "3"});
    const auto where = places(c);
    CHECK(where.at(3) == std::make_pair(true, true));
    c.close();
  }
  // A restart on an empty disk finds the latest remote step and loads it.
  Checkpointer fresh(dir / "elsewhere", remote_options(store));
  REQUIRE(fresh.latest());
  CHECK(fresh.latest()->step == 3);
  CHECK_FALSE(fresh.latest()->local);
  CHECK(fresh.latest()->remote);
  CHECK(fresh.latest()->metrics == nlohmann::json{{"loss", 3}});
  CHECK(fresh.load_pytree() == tree_of(3));
  CHECK(fresh.load_pytree(1) == tree_of(1));
  CHECK(fresh.metadata(2).name == "state");
  // Loading left nothing behind on the local disk.
  CHECK(folder_entries(dir / "elsewhere").size() <= 1);  // the policy record
}

TEST_CASE("local copies beyond keep_local go once persisted", "[remote]") {
  TempDir dir;
  auto store = directory_store((dir / "store").string());
  CheckpointerOptions options = remote_options(store);
  options.remote.keep_local = 1;
  Checkpointer c(dir / "local", options);
  for (int64_t step : {10, 20, 30}) c.save_pytree(step, tree_of(step));
  c.wait_for_uploads();
  const auto where = places(c);
  CHECK(where.at(10) == std::make_pair(false, true));
  CHECK(where.at(20) == std::make_pair(false, true));
  CHECK(where.at(30) == std::make_pair(true, true));
  CHECK_FALSE(fs::exists(dir / "local" / "10"));
  CHECK(fs::exists(dir / "local" / "30"));
  CHECK(c.load_pytree(10) == tree_of(10));
  // A reload sees both places again.
  c.reload();
  CHECK(places(c) == where);
  c.close();
}

TEST_CASE("the preservation policy prunes remote steps too", "[remote]") {
  TempDir dir;
  auto store = directory_store((dir / "store").string());
  CheckpointerOptions options = remote_options(store);
  options.preservation_policy = LatestN(2);
  Checkpointer c(dir / "local", options);
  for (int64_t step = 1; step <= 5; ++step) {
    c.save_pytree(step, tree_of(step));
  }
  c.wait_for_uploads();
  CHECK(remote_steps(*store) == std::vector<std::string>{"4", "5"});
  CHECK(places(c).size() == 2);
  // Nothing of the pruned steps is left in the store.
  for (const RemoteObject& o : store->list("")) {
    INFO(o.key);
    CHECK((o.key.rfind("4/", 0) == 0 || o.key.rfind("5/", 0) == 0));
  }
  c.close();
}

TEST_CASE("failed uploads keep the step local; the next run finishes them",
          "[remote]") {
  TempDir dir;
  auto store = directory_store((dir / "store").string());
  {
    Checkpointer c(dir / "local",
                   remote_options(std::make_shared<FlakyStore>(store, 1000)));
    c.save_pytree(1, tree_of(1));
    c.save_pytree(2, tree_of(2));
    CHECK_THAT(message_of<IOError>([&] { c.close(); }),
               Catch::Contains("injected"));
    CHECK(places(c).at(2) == std::make_pair(true, false));
  }
  CHECK(remote_steps(*store).empty());
  // The local checkpoints are whole.
  CHECK(load(dir / "local" / "2") == tree_of(2));
  Checkpointer again(dir / "local", remote_options(store));
  again.wait_for_uploads();
  CHECK(remote_steps(*store) == std::vector<std::string>{"1", "2"});
  again.close();
}

TEST_CASE("two writers of one remote root: one wins each step", "[remote]") {
  TempDir dir;
  auto store = directory_store((dir / "store").string());
  Checkpointer a(dir / "a", remote_options(store));
  Checkpointer b(dir / "b", remote_options(store));
  a.save_pytree(7, tree_of(7));
  a.wait_for_uploads();
  b.save_pytree(7, tree_of(70));
  CHECK_THAT(message_of<AlreadyExistsError>([&] { b.wait_for_uploads(); }),
             Catch::Contains("already committed"));
  a.close();
  b.close();
  Checkpointer reader(dir / "c", remote_options(store));
  CHECK(reader.load_pytree(7) == tree_of(7));
}

TEST_CASE("a step saved again during its upload goes up as saved last",
          "[remote]") {
  TempDir dir;
  auto store = directory_store((dir / "store").string());
  auto gated = std::make_shared<GatedStore>(store);
  Checkpointer c(dir / "local", remote_options(gated));
  c.save_pytree(1, tree_of(1));
  gated->wait_until_held();  // step 1's upload is under way
  StepSaveOptions again;
  again.force = true;
  again.overwrite = true;
  c.save_pytree(1, tree_of(100), again);
  gated->release();
  // The first upload's folder changed under it: no error, the second
  // upload persists the step.
  c.wait_for_uploads();
  CHECK(remote_steps(*store) == std::vector<std::string>{"1"});
  c.close();
  Checkpointer reader(dir / "elsewhere", remote_options(store));
  CHECK(reader.load_pytree(1) == tree_of(100));
}
