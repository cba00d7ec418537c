// Checkpoints in a RemoteStore (ckpt/remote.h), over directory_store():
// upload, commit record, download (whole and partial), damage, hostile
// records, concurrent writers, removal beside foreign keys.
#include <ckpt/checkpoint.h>
#include <ckpt/errors.h>
#include <ckpt/remote.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <vector>

#include "test_util.h"

using namespace ckpt;
namespace fs = std::filesystem;
using ckpt::test::message_of;
using ckpt::test::read_text;
using ckpt::test::TempDir;
using ckpt::test::write_text;

namespace {

Value sample_tree() {
  std::vector<float> w(4096);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i) * 0.5f;
  return Value::dict({{"w", Array::from(w, {64, 64})},
                      {"b", Array::from(std::vector<int64_t>{1, 2, 3})},
                      {"step", Value(int64_t{7})}});
}

// A checkpoint with a pytree `state` and a JSON `config`.
fs::path saved_checkpoint(const TempDir& dir) {
  const fs::path path = dir / "local";
  save_checkpointables(
      path, {{"state", sample_tree()}, {"config", Value::json({{"lr", 0.1}})}});
  return path;
}

std::vector<std::string> keys_of(RemoteStore& store, const std::string& p) {
  std::vector<std::string> keys;
  for (const RemoteObject& o : store.list(p)) keys.push_back(o.key);
  return keys;
}

size_t attempts_under(RemoteStore& store, const std::string& prefix) {
  std::set<std::string> attempts;
  for (const std::string& key : keys_of(store, prefix + "/attempt-")) {
    attempts.insert(key.substr(0, key.find('/', prefix.size() + 1)));
  }
  return attempts.size();
}

}  // namespace

TEST_CASE("a checkpoint goes up and comes back whole", "[remote]") {
  TempDir dir;
  const fs::path local = saved_checkpoint(dir);
  auto store = directory_store((dir / "store").string());
  upload_checkpoint(local.string(), *store, "runs/a/step_1");

  const RemoteCheckpoint remote =
      open_remote_checkpoint(*store, "runs/a/step_1");
  CHECK(remote.attempt.rfind("attempt-", 0) == 0);
  std::set<std::string> paths;
  for (const RemoteFile& f : remote.files) paths.insert(f.path);
  CHECK(paths.count("_CHECKPOINT_METADATA"));
  CHECK(paths.count("state/arrays.h5"));
  CHECK(paths.count("config/data.json"));
  // The record is the last key written and names only uploaded files.
  for (const RemoteFile& f : remote.files) {
    CHECK(store->get(remote.key_of(f.path)).size() ==
          static_cast<size_t>(f.size));
  }

  download_checkpoint(*store, "runs/a/step_1", (dir / "back").string());
  CHECK(load(dir / "back", nullptr, "state") == sample_tree());
  const Checkpointables both = load_checkpointables(dir / "back");
  CHECK(both.size() == 2);
}

TEST_CASE("a partial download fetches only the checkpointables asked for",
          "[remote]") {
  TempDir dir;
  auto store = directory_store((dir / "store").string());
  upload_checkpoint(saved_checkpoint(dir).string(), *store, "c");
  download_checkpoint(*store, "c", (dir / "part").string(), {"config"});
  CHECK(fs::exists(dir / "part" / "config" / "data.json"));
  CHECK(fs::exists(dir / "part" / "_CHECKPOINT_METADATA"));
  CHECK_FALSE(fs::exists(dir / "part" / "state"));
  const Checkpointables got =
      load_checkpointables(dir / "part", {{"config", Value()}});
  REQUIRE(got.size() == 1);
  CHECK(got[0].first == "config");
  CHECK(got[0].second == Value::json({{"lr", 0.1}}));
  CHECK_THAT(message_of<NotFoundError>([&] {
               download_checkpoint(*store, "c", (dir / "x").string(),
                                   {"optimizer"});
             }),
             Catch::Contains("has no 'optimizer'"));
}

TEST_CASE("a second upload to a committed prefix is AlreadyExists",
          "[remote]") {
  TempDir dir;
  const fs::path local = saved_checkpoint(dir);
  auto store = directory_store((dir / "store").string());
  upload_checkpoint(local.string(), *store, "s");
  const std::string record = store->get("s/_CKPT_REMOTE");
  CHECK_THAT(message_of<AlreadyExistsError>(
                 [&] { upload_checkpoint(local.string(), *store, "s"); }),
             Catch::Contains("already committed"));
  // The loser's files are gone; the winner's record and files stay.
  CHECK(attempts_under(*store, "s") == 1);
  CHECK(store->get("s/_CKPT_REMOTE") == record);
  download_checkpoint(*store, "s", (dir / "back").string());
}

TEST_CASE("a commit removes what unfinished uploads left under its prefix",
          "[remote]") {
  TempDir dir;
  auto store = directory_store((dir / "store").string());
  // A killed upload's files, and a key of someone else.
  write_text(dir / "partial", "partial");
  write_text(dir / "theirs", "theirs");
  store->put_file("s/attempt-00000000000000aa/state/x",
                  (dir / "partial").string());
  store->put_file("s/attempt-00000000000000bb/y", (dir / "partial").string());
  store->put_file("s/attempt-notes.txt", (dir / "theirs").string());
  REQUIRE(attempts_under(*store, "s") == 3);
  upload_checkpoint(saved_checkpoint(dir).string(), *store, "s");
  CHECK(keys_of(*store, "s/attempt-00000000000000").empty());
  CHECK(store->get("s/attempt-notes.txt") == "theirs");
  download_checkpoint(*store, "s", (dir / "back").string());
  CHECK(load(dir / "back", nullptr, "state") == sample_tree());
}

TEST_CASE("concurrent writers of one prefix: one wins, the rest are told",
          "[remote]") {
  TempDir dir;
  const fs::path local = saved_checkpoint(dir);
  auto store = directory_store((dir / "store").string());
  std::atomic<int> won{0}, refused{0};
  std::vector<std::thread> writers;
  for (int i = 0; i < 4; ++i) {
    writers.emplace_back([&] {
      try {
        upload_checkpoint(local.string(), *store, "step_5");
        ++won;
      } catch (const AlreadyExistsError&) {
        ++refused;
      }
    });
  }
  for (std::thread& t : writers) t.join();
  CHECK(won == 1);
  CHECK(refused == 3);
  CHECK(attempts_under(*store, "step_5") == 1);
  download_checkpoint(*store, "step_5", (dir / "back").string());
  CHECK(load(dir / "back", nullptr, "state") == sample_tree());
}

TEST_CASE("a damaged file in the store is DataLoss naming it, nothing made",
          "[remote]") {
  TempDir dir;
  auto store = directory_store((dir / "store").string());
  upload_checkpoint(saved_checkpoint(dir).string(), *store, "d");
  const RemoteCheckpoint remote = open_remote_checkpoint(*store, "d");
  const fs::path victim = dir / "store" / remote.key_of("config/data.json");
  std::string text = read_text(victim);
  text[text.size() / 2] ^= 0x20;
  fs::remove(victim);
  write_text(victim, text);
  CHECK_THAT(message_of<DataLossError>([&] {
               download_checkpoint(*store, "d", (dir / "back").string());
             }),
             Catch::Contains("config/data.json") &&
                 Catch::Contains("differs from its commit record"));
  CHECK_FALSE(fs::exists(dir / "back"));
  CHECK(test::folder_entries(dir.path()) ==
        std::vector<std::string>{"local", "store"});
}

TEST_CASE("hostile commit records are refused before any file is fetched",
          "[remote]") {
  TempDir dir;
  auto store = directory_store((dir / "store").string());
  const auto record = [](const nlohmann::json& files) {
    return nlohmann::json{{"format", "ckpt remote checkpoint"},
                          {"version", 1},
                          {"attempt", "attempt-0123456789abcdef"},
                          {"folders", nlohmann::json::array()},
                          {"files", files}}
        .dump();
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json {", "not JSON"},
      {record({{{"path", "../../etc/passwd"},
                {"size", 1},
                {"xxh3", "0000000000000000"}}}),
       "'..' component"},
      {record({{{"path", "/abs"}, {"size", 1}, {"xxh3", "0000000000000000"}}}),
       "is absolute"},
      {record({{{"path", "a"}, {"size", -1}, {"xxh3", "0000000000000000"}}}),
       "not a valid size"},
      {record({{{"path", "a"}, {"size", 1}, {"xxh3", "zz"}}}), "16 hex digits"},
      {record({{{"path", "a"}, {"size", 1}, {"xxh3", "0000000000000000"}},
               {{"path", "a"}, {"size", 1}, {"xxh3", "0000000000000000"}}}),
       "listed twice"},
      {nlohmann::json{{"format", "ckpt remote checkpoint"},
                      {"version", 1},
                      {"attempt", "../x"},
                      {"folders", nlohmann::json::array()},
                      {"files", nlohmann::json::array()}}
           .dump(),
       "attempt"},
  };
  int i = 0;
  for (const auto& [text, why] : cases) {
    const std::string prefix = "h" + std::to_string(i++);
    REQUIRE(store->put_if_absent(prefix + "/_CKPT_REMOTE", text));
    INFO(text);
    CHECK_THAT(
        message_of<DataLossError>([&] {
          download_checkpoint(*store, prefix, (dir / "out").string());
        }),
        Catch::Contains(prefix + "/_CKPT_REMOTE") && Catch::Contains(why));
    CHECK_FALSE(fs::exists(dir / "out"));
  }
  CHECK_THAT(message_of<NotFoundError>([&] {
               download_checkpoint(*store, "nothing", (dir / "out").string());
             }),
             Catch::Contains("no checkpoint is committed at"));
}

TEST_CASE("removal takes the checkpoint and leaves foreign keys alone",
          "[remote]") {
  TempDir dir;
  auto store = directory_store((dir / "store").string());
  upload_checkpoint(saved_checkpoint(dir).string(), *store, "r/step_1");
  write_text(dir / "store" / "r" / "step_1" / "notes.txt", "mine");
  write_text(dir / "store" / "r" / "other.txt", "theirs");
  remove_remote_checkpoint(*store, "r/step_1");
  CHECK(keys_of(*store, "r/") ==
        std::vector<std::string>{"r/other.txt", "r/step_1/notes.txt"});
  CHECK_THROWS_AS(open_remote_checkpoint(*store, "r/step_1"), NotFoundError);
}

TEST_CASE("the directory store refuses keys that leave its folder",
          "[remote]") {
  TempDir dir;
  auto store = directory_store((dir / "store").string());
  for (const std::string key :
       {"../x", "a/../../x", "/etc/passwd", "", "a//b", "./a"}) {
    INFO(key);
    CHECK_THROWS_AS(store->put_if_absent(key, "x"), InvalidArgumentError);
    CHECK_THROWS_AS(store->get(key), InvalidArgumentError);
  }
  CHECK(store->put_if_absent("a/b", "12345"));
  CHECK_FALSE(store->put_if_absent("a/b", "other"));
  CHECK(store->get("a/b", 1, 3) == "234");
  CHECK(store->get("a/b", 3, 100) == "45");
  CHECK_THROWS_AS(store->get("a/b", 6), InvalidArgumentError);
  CHECK_THROWS_AS(store->get("a/missing"), NotFoundError);
  store->remove("a/missing");
  CHECK_THROWS_AS(upload_checkpoint((dir / "store").string(), *store, "x"),
                  InvalidLayoutError);
}
