// ckpt-s3 against a real S3 server (moto, checking every signature) and a
// fault-injecting proxy before it: run under tests/s3/s3_env.py, which
// starts both and sets CKPT_TEST_S3_*.
#include <ckpt/checkpoint.h>
#include <ckpt/checkpointer.h>
#include <ckpt/errors.h>
#include <ckpt/remote.h>
#include <ckpt/s3.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "http.h"
#include "s3/s3_test_util.h"
#include "test_util.h"

using namespace ckpt;
namespace fs = std::filesystem;
using ckpt::test::env;
using ckpt::test::fast_retries;
using ckpt::test::fresh_prefix;
using ckpt::test::message_of;
using ckpt::test::TempDir;

namespace {

S3Options s3_options_with(int max_attempts) {
  S3Options options = fast_retries();
  options.max_attempts = max_attempts;
  return options;
}

S3Options fast_retries_at(const std::string& endpoint) {
  S3Options options = fast_retries();
  options.endpoint = endpoint;
  return options;
}

// A store on the server itself, or (through_proxy) through the proxy.
std::shared_ptr<RemoteStore> store_at(const std::string& prefix,
                                      bool through_proxy = false,
                                      S3Options options = fast_retries()) {
  options.endpoint =
      env(through_proxy ? "CKPT_TEST_S3_PROXY" : "CKPT_TEST_S3_ENDPOINT");
  return s3_store("s3://" + env("CKPT_TEST_S3_BUCKET") + "/" + prefix, options);
}

nlohmann::json control(const std::string& method, const std::string& body) {
  return ckpt::test::http_json(method, env("CKPT_TEST_S3_CONTROL") + "/faults",
                               body);
}

void inject(const nlohmann::json& rule) {
  control("DELETE", "");
  control("POST", rule.dump());
}

// The requests the proxy saw whose path holds `part`, and their faults.
std::vector<std::string> seen(const std::string& part) {
  std::vector<std::string> out;
  for (const auto& entry : control("GET", "")) {
    const std::string path = entry[1];
    if (path.find(part) == std::string::npos) continue;
    out.push_back(std::string(entry[0]) + " " +
                  (entry[2].is_null() ? "ok" : std::string(entry[2])));
  }
  return out;
}

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(gen());
  return out;
}

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
}

Value sample_tree() {
  std::vector<float> w(1 << 20);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i % 977);
  return Value::dict({{"w", Array::from(w, {1024, 1024})},
                      {"b", Array::from(std::vector<int32_t>{1, 2, 3})}});
}

fs::path saved_checkpoint(const TempDir& dir) {
  save_checkpointables(dir / "local", {{"state", sample_tree()},
                                       {"config", Value::json({{"lr", 0.5}})}});
  return dir / "local";
}

}  // namespace

TEST_CASE("objects go up, come back, are listed and removed", "[s3]") {
  auto store = store_at(fresh_prefix());
  TempDir dir;
  const std::string small = "hello, ckpt";
  write_file(dir / "small", small);
  store->put_file("a dir/small ü+&=.txt", (dir / "small").string());
  CHECK(store->get("a dir/small ü+&=.txt") == small);
  CHECK(store->get("a dir/small ü+&=.txt", 7, 4) == "ckpt");
  CHECK(store->get("a dir/small ü+&=.txt", 7) == "ckpt");
  CHECK_THROWS_AS(store->get("a dir/small ü+&=.txt", 100),
                  InvalidArgumentError);
  CHECK(store->put_if_absent("record", "first"));
  CHECK_FALSE(store->put_if_absent("record", "second"));
  CHECK(store->get("record") == "first");
  write_file(dir / "empty", "");
  store->put_file("empty", (dir / "empty").string());
  CHECK(store->get("empty").empty());
  store->get_file("empty", (dir / "empty-back").string());
  CHECK(fs::file_size(dir / "empty-back") == 0);

  const std::vector<RemoteObject> all = store->list("");
  std::vector<std::string> keys;
  for (const RemoteObject& o : all) keys.push_back(o.key);
  CHECK(keys ==
        std::vector<std::string>{"a dir/small ü+&=.txt", "empty", "record"});
  CHECK(all[0].size == static_cast<int64_t>(small.size()));
  CHECK(store->list("a dir/").size() == 1);
  CHECK(store->list("nothing/").empty());

  CHECK_THAT(message_of<NotFoundError>([&] { store->get("missing"); }),
             Catch::Contains("missing") && Catch::Contains("no such key"));
  store->remove("record");
  store->remove("record");  // a missing key is no error
  CHECK(store->list("record").empty());
}

TEST_CASE("listings page past 1,000 keys", "[s3]") {
  auto store = store_at(fresh_prefix());
  std::vector<std::thread> writers;
  for (int t = 0; t < 8; ++t) {
    writers.emplace_back([&, t] {
      for (int i = t; i < 1010; i += 8) {
        char key[32];
        std::snprintf(key, sizeof key, "k/%05d", i);
        store->put_if_absent(key, "x");
      }
    });
  }
  for (std::thread& t : writers) t.join();
  const std::vector<RemoteObject> all = store->list("k/");
  REQUIRE(all.size() == 1010);
  CHECK(all.front().key == "k/00000");
  CHECK(all.back().key == "k/01009");
}

TEST_CASE("large files go up in parts and come down in ranges", "[s3]") {
  auto store = store_at(fresh_prefix(), /*through_proxy=*/true);
  TempDir dir;
  const std::string bytes = random_bytes((17 << 20) + 12345, 7);
  write_file(dir / "big", bytes);
  control("DELETE", "");
  store->put_file("big.bin", (dir / "big").string());
  // 4 parts of 5 MiB: start, parts, complete.
  CHECK(seen("uploads").size() == 1);
  CHECK(seen("partNumber=").size() == 4);
  store->get_file("big.bin", (dir / "back").string());
  CHECK((read_file(dir / "back") == bytes));
  CHECK(seen("big.bin").size() == 1 + 4 + 1 + 4);  // 4 ranged GETs
  CHECK((store->get("big.bin", 5 << 20, 10) == bytes.substr(5 << 20, 10)));
}

TEST_CASE("a checkpoint goes up to S3 and comes back whole", "[s3]") {
  const std::string prefix = fresh_prefix();
  auto store = store_at(prefix);
  TempDir dir;
  upload_checkpoint(saved_checkpoint(dir).string(), *store, "step_1");
  download_checkpoint(*store, "step_1", (dir / "back").string());
  CHECK(load(dir / "back", nullptr, "state") == sample_tree());
  // Only the record and the attempt's files are there.
  for (const RemoteObject& o : store->list("step_1/")) {
    INFO(o.key);
    CHECK((o.key == "step_1/_CKPT_REMOTE" ||
           o.key.rfind("step_1/attempt-", 0) == 0));
  }
  CHECK_THAT(message_of<AlreadyExistsError>([&] {
               upload_checkpoint((dir / "local").string(), *store, "step_1");
             }),
             Catch::Contains("already committed"));
}

TEST_CASE("faults on the way are retried and the bytes arrive intact", "[s3]") {
  const std::string prefix = fresh_prefix();
  auto direct = store_at(prefix);
  auto proxied = store_at(prefix, /*through_proxy=*/true);
  TempDir dir;
  const std::string bytes = random_bytes(300000, 3);
  write_file(dir / "f", bytes);
  direct->put_file("f", (dir / "f").string());

  for (const std::string fault :
       {"500", "503", "drop", "truncate", "bitflip", "stall"}) {
    INFO(fault);
    if (fault == "bitflip") {
      // S3's protocol does not check a GET's body: the checkpoint's record
      // does (below); here only a PUT's is checked, by its signed hash.
      continue;
    }
    inject({{"method", "GET"}, {"path", "/f"}, {"fault", fault}, {"times", 2}});
    CHECK((proxied->get("f") == bytes));
    CHECK(seen("/f") ==
          std::vector<std::string>{"GET " + fault, "GET " + fault, "GET ok"});
    inject({{"method", "PUT"}, {"path", "/g"}, {"fault", fault}, {"times", 2}});
    proxied->put_file("g", (dir / "f").string());
    CHECK((direct->get("g") == bytes));
    CHECK(seen("/g").size() == 3);
  }
}

TEST_CASE("a damaged download of a checkpoint is fetched again", "[s3]") {
  const std::string prefix = fresh_prefix();
  auto proxied = store_at(prefix, /*through_proxy=*/true);
  TempDir dir;
  upload_checkpoint(saved_checkpoint(dir).string(), *store_at(prefix), "s");
  inject({{"method", "GET"},
          {"path", "config/data.json"},
          {"fault", "bitflip"},
          {"times", 1}});
  download_checkpoint(*proxied, "s", (dir / "back").string());
  CHECK(seen("config/data.json") ==
        std::vector<std::string>{"GET bitflip", "GET ok"});
  CHECK(load_checkpointables(dir / "back").size() == 2);
  // Damaged every time: DataLoss naming the file, nothing made.
  inject({{"method", "GET"},
          {"path", "config/data.json"},
          {"fault", "bitflip"},
          {"times", 100}});
  CHECK_THAT(message_of<DataLossError>([&] {
               download_checkpoint(*proxied, "s", (dir / "again").string());
             }),
             Catch::Contains("config/data.json") && Catch::Contains("3 tries"));
  CHECK_FALSE(fs::exists(dir / "again"));
}

TEST_CASE("retries are bounded: then IOError naming key, tries and status",
          "[s3]") {
  S3Options options = fast_retries();
  options.max_attempts = 3;
  auto proxied = store_at(fresh_prefix(), true, options);
  inject({{"path", "/k"}, {"fault", "503"}, {"times", 100}});
  CHECK_THAT(message_of<IOError>([&] { proxied->get("k"); }),
             Catch::Contains("/k failed after 3 tries") &&
                 Catch::Contains("HTTP 503 SlowDown"));
  CHECK(seen("/k").size() == 3);
  control("DELETE", "");
}

TEST_CASE("an unreachable endpoint is IOError after the retry budget", "[s3]") {
  S3Options options = fast_retries();
  options.max_attempts = 2;
  options.endpoint = "http://127.0.0.1:1";
  auto store = s3_store("s3://" + env("CKPT_TEST_S3_BUCKET") + "/x", options);
  TempDir dir;
  const fs::path local = saved_checkpoint(dir);
  CHECK_THAT(
      message_of<IOError>(
          [&] { upload_checkpoint(local.string(), *store, "s"); }),
      Catch::Contains("failed after 2 tries") && Catch::Contains("onnect"));
  // The local checkpoint is untouched.
  CHECK(load(local, nullptr, "state") == sample_tree());
}

TEST_CASE("wrong credentials are PermissionDenied naming the bucket", "[s3]") {
  const std::string bucket = env("CKPT_TEST_S3_BUCKET");
  S3Options options = fast_retries();
  options.endpoint = env("CKPT_TEST_S3_ENDPOINT");
  options.access_key_id = env("AWS_ACCESS_KEY_ID");
  options.secret_access_key = "not-the-secret";
  auto wrong = s3_store("s3://" + bucket + "/creds", options);
  TempDir dir;
  CHECK_THAT(message_of<PermissionDeniedError>([&] {
               upload_checkpoint(saved_checkpoint(dir).string(), *wrong, "s");
             }),
             Catch::Contains("s3://" + bucket) &&
                 Catch::Contains("SignatureDoesNotMatch"));
  options.access_key_id = "AKIDNOSUCHKEY";
  auto unknown = s3_store("s3://" + bucket + "/creds", options);
  CHECK_THAT(message_of<PermissionDeniedError>([&] { unknown->list(""); }),
             Catch::Contains("InvalidAccessKeyId"));
  // Nothing was written.
  CHECK(store_at("creds")->list("").empty());
}

TEST_CASE("s3 URLs and options are checked", "[s3]") {
  CHECK_THROWS_AS(s3_store("http://bucket/x"), InvalidArgumentError);
  CHECK_THROWS_AS(s3_store("s3://Bad_Bucket/x"), InvalidArgumentError);
  CHECK_THROWS_AS(s3_store("s3://ab"), InvalidArgumentError);
  S3Options small;
  small.part_size = 1 << 20;
  CHECK_THROWS_AS(s3_store("s3://bucket", small), InvalidArgumentError);
  S3Options bad_endpoint;
  bad_endpoint.endpoint = "ftp://host";
  CHECK_THROWS_AS(s3_store("s3://bucket", bad_endpoint), InvalidArgumentError);
  CHECK(is_s3_url("s3://b/k"));
  CHECK_FALSE(is_s3_url("/s3://b"));
}

namespace {

// `ckpt ARGS` against the S3 server (AWS_ENDPOINT_URL), output and status.
test::CommandResult tool(const std::string& args) {
  return test::run_command("AWS_ENDPOINT_URL=" + env("CKPT_TEST_S3_ENDPOINT") +
                           " " CKPT_TOOL " " + args + " 2>&1");
}

}  // namespace

TEST_CASE("the tool copies, lists and reads checkpoints in S3", "[s3]") {
  TempDir dir;
  const std::string root =
      "s3://" + env("CKPT_TEST_S3_BUCKET") + "/" + fresh_prefix();
  const fs::path local = saved_checkpoint(dir);
  auto up = tool("cp " + local.string() + " " + root + "/step_3");
  INFO(up.output);
  REQUIRE(up.status == 0);
  CHECK_THAT(up.output, Catch::Contains("every byte checked"));
  REQUIRE(tool("cp " + local.string() + " " + root + "/ckpt_12").status == 0);
  REQUIRE(tool("cp " + root + "/step_3 " + root + "/copied").status == 0);

  const auto ls = tool("ls " + root + " --json");
  INFO(ls.output);
  REQUIRE(ls.status == 0);
  const auto listing = nlohmann::json::parse(ls.output);
  REQUIRE(listing["steps"].size() == 2);
  CHECK(listing["steps"][0]["step"] == 3);
  CHECK(listing["steps"][1]["name"] == "ckpt_12");
  CHECK(listing["other_checkpoints"] == nlohmann::json{"copied"});

  const auto info = tool("info " + root + "/step_3");
  INFO(info.output);
  CHECK(info.status == 0);
  CHECK_THAT(info.output, Catch::Contains("state"));
  // Named by its URL, never by the local copy read.
  CHECK_THAT(info.output, Catch::Contains(root + "/step_3"));
  CHECK_THAT(info.output, !Catch::Contains("ckpt-fetch"));
  const auto no_key = tool("tree " + root + "/step_3 no_such_name");
  INFO(no_key.output);
  CHECK(no_key.status == 1);
  CHECK_THAT(no_key.output, Catch::Contains(root + "/step_3") &&
                                !Catch::Contains("ckpt-fetch"));
  const auto cat = tool("cat " + root + "/copied config");
  INFO(cat.output);
  CHECK(cat.status == 0);
  CHECK_THAT(cat.output, Catch::Contains("0.5"));
  CHECK(tool("tree " + root + "/step_3 state").status == 0);
  const auto verify = tool("verify " + root + "/step_3");
  INFO(verify.output);
  CHECK(verify.status == 0);

  auto down = tool("cp " + root + "/step_3 " + (dir / "down").string());
  INFO(down.output);
  REQUIRE(down.status == 0);
  CHECK(load(dir / "down", nullptr, "state") == sample_tree());

  const auto again = tool("cp " + local.string() + " " + root + "/step_3");
  CHECK(again.status == 1);
  CHECK_THAT(again.output, Catch::Contains("already committed"));
  const auto missing = tool("info " + root + "/step_99");
  CHECK(missing.status == 1);
  CHECK_THAT(missing.output, Catch::Contains("no checkpoint is committed"));
  const auto local_only =
      tool("cp " + local.string() + " " + (dir / "x").string());
  CHECK(local_only.status == 1);
  CHECK_THAT(local_only.output, Catch::Contains("must be an s3:// URL"));
}

TEST_CASE("a Checkpointer on S3: foreign keys stay, steps are found", "[s3]") {
  const std::string prefix = fresh_prefix();
  auto store = store_at(prefix);
  TempDir dir;
  // Keys of others under the prefix: never steps, never touched.
  write_file(dir / "note", "theirs");
  store->put_file("README.txt", (dir / "note").string());
  store->put_file("7/notes.txt", (dir / "note").string());
  store->put_file("other_run/_CKPT_REMOTE", (dir / "note").string());
  CheckpointerOptions options;
  options.remote.store = store;
  options.preservation_policy = LatestN(1);
  {
    Checkpointer c(dir / "a", options);
    CHECK(c.checkpoints().empty());
    c.save_pytree(1, sample_tree());
    c.save_pytree(2, sample_tree());
    c.close();
  }
  Checkpointer fresh(dir / "b", options);
  REQUIRE(fresh.checkpoints().size() == 1);
  CHECK(fresh.latest()->step == 2);
  CHECK(fresh.load_pytree() == sample_tree());
  for (const std::string key :
       {"README.txt", "7/notes.txt", "other_run/_CKPT_REMOTE"}) {
    CHECK(store->get(key) == "theirs");
  }
  CHECK(store->list("1/").empty());
}

TEST_CASE("an unreachable store is a clear error; local steps stay whole",
          "[s3]") {
  TempDir dir;
  {
    Checkpointer local_only(dir / "local");
    local_only.save_pytree(1, sample_tree());
  }
  S3Options s3 = fast_retries();
  s3.max_attempts = 2;
  s3.endpoint = "http://127.0.0.1:1";
  CheckpointerOptions options;
  options.remote.store =
      s3_store("s3://" + env("CKPT_TEST_S3_BUCKET") + "/x", s3);
  // Which step is newest cannot be known: opening the root fails.
  CHECK_THAT(
      message_of<IOError>([&] { Checkpointer c(dir / "local", options); }),
      Catch::Contains("s3://" + env("CKPT_TEST_S3_BUCKET") + "/x") &&
          Catch::Contains("failed after 2 tries"));
  CHECK(load(dir / "local" / "1") == sample_tree());
  // A store that goes away after the open: the save commits locally, the
  // upload's failure comes at close.
  options.remote.store =
      store_at(fresh_prefix(), /*through_proxy=*/true, s3_options_with(2));
  Checkpointer c(dir / "other", options);
  inject({{"fault", "drop"}, {"times", 1000}});
  c.save_pytree(5, sample_tree());
  CHECK_THAT(message_of<IOError>([&] { c.close(); }),
             Catch::Contains("failed after 2 tries"));
  control("DELETE", "");
  CHECK(load(dir / "other" / "5") == sample_tree());
}

TEST_CASE("SIGKILL during an upload: no partial step; the next run uploads",
          "[s3]") {
  TempDir dir;
  const std::string root =
      "s3://" + env("CKPT_TEST_S3_BUCKET") + "/" + fresh_prefix();
  // Uploads of the example's arrays stall (5 s each) behind the proxy; the
  // loop is killed while they hang.
  inject({{"method", "PUT"},
          {"path", "arrays.h5"},
          {"fault", "stall"},
          {"times", 1000}});
  const std::string run = CKPT_BUILD_ROOT "/examples/training_loop " +
                          (dir / "local").string() + " ";
  const auto killed =
      test::run_command("CKPT_REMOTE_ROOT=" + root + " AWS_ENDPOINT_URL=" +
                        env("CKPT_TEST_S3_PROXY") + " timeout -s KILL 4 " +
                        run + "1000000 > /dev/null 2>&1");
  CHECK(killed.status != 0);
  control("DELETE", "");
  // The remote root shows whole steps only.
  auto store = s3_store(root, fast_retries_at(env("CKPT_TEST_S3_ENDPOINT")));
  for (const RemoteObject& o : store->list("")) {
    const size_t slash = o.key.find('/');
    if (o.key.substr(slash + 1) != kRemoteCommitRecord) continue;
    const RemoteCheckpoint c =
        open_remote_checkpoint(*store, o.key.substr(0, slash));
    for (const RemoteFile& f : c.files) {
      CHECK(store->list(c.key_of(f.path)).size() == 1);
    }
  }
  const size_t local_steps = Checkpointer(dir / "local").checkpoints().size();
  REQUIRE(local_steps > 0);
  // The next run (no faults now) persists what the killed one did not.
  const auto next =
      test::run_command("CKPT_REMOTE_ROOT=" + root + " AWS_ENDPOINT_URL=" +
                        env("CKPT_TEST_S3_ENDPOINT") + " " + run + "10 2>&1");
  INFO(next.output);
  CHECK(next.status == 0);
  CheckpointerOptions options;
  options.remote.store = store;
  Checkpointer after(dir / "local", options);
  for (const CheckpointStep& c : after.checkpoints()) {
    INFO(c.step);
    CHECK(c.remote);
  }
  // Nothing of the killed uploads is left: each step's keys are its
  // record and its committed attempt's files.
  for (const std::string& name : list_remote_checkpoints(*store)) {
    const RemoteCheckpoint c = open_remote_checkpoint(*store, name);
    for (const RemoteObject& o : store->list(name + "/")) {
      INFO(o.key);
      CHECK((o.key == name + "/" + kRemoteCommitRecord ||
             o.key.rfind(name + "/" + c.attempt + "/", 0) == 0));
    }
  }
}
