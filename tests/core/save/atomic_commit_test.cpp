// Atomic commit: new files, folder renames and exchanges, and the temporary
// folder a save writes before it becomes the checkpoint.
#include "save/atomic_commit.h"

#include <ckpt/checkpoint.h>
#include <ckpt/errors.h>
#include <ckpt/layout.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <memory>
#include <set>

#include "format/names.h"
#include "save/save_owner.h"
#include "test_util.h"

using namespace ckpt;
using ckpt::internal::commit_folder;
using ckpt::internal::fsync_directory;
using ckpt::internal::is_temporary_name;
using ckpt::internal::kOwnerFile;
using ckpt::internal::parse_owner_record;
using ckpt::internal::remove_quietly;
using ckpt::internal::TemporaryCheckpoint;
using ckpt::internal::this_owner;
using ckpt::internal::write_file;
using ckpt::test::message_of;
using ckpt::test::read_text;
using ckpt::test::TempDir;
using ckpt::test::write_text;
namespace fs = std::filesystem;

namespace {

// The names of the entries of `dir`.
std::set<std::string> entries(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.insert(entry.path().filename().string());
  }
  return names;
}

// The permission bits of `path`.
unsigned mode_of(const fs::path& path) {
  return static_cast<unsigned>(fs::status(path).permissions() &
                               fs::perms::mask);
}

// A folder `dir` holding one file `file` with `text`.
fs::path folder_with(const fs::path& dir, const std::string& file,
                     const std::string& text) {
  fs::create_directories(dir);
  write_text(dir / file, text);
  return dir;
}

}  // namespace

TEST_CASE("write_file creates a file with the text and mode given",
          "[commit]") {
  TempDir dir;
  write_file(dir / "rw", "hello", 0600);
  write_file(dir / "ro", "", 0400);
  CHECK(read_text(dir / "rw") == "hello");
  CHECK(mode_of(dir / "rw") == 0600);
  CHECK(fs::file_size(dir / "ro") == 0);
  CHECK(mode_of(dir / "ro") == 0400);
}

TEST_CASE("write_file refuses to replace an existing file", "[commit]") {
  TempDir dir;
  write_text(dir / "f", "old");
  CHECK_THAT(message_of<AlreadyExistsError>(
                 [&] { write_file(dir / "f", "new", 0644); }),
             Catch::Contains((dir / "f").string()));
  CHECK(read_text(dir / "f") == "old");
}

TEST_CASE("write_file into a missing folder is NotFoundError", "[commit]") {
  TempDir dir;
  CHECK_THROWS_AS(write_file(dir / "missing" / "f", "x", 0644), NotFoundError);
  CHECK_FALSE(fs::exists(dir / "missing"));
}

TEST_CASE("commit_folder renames a folder to a free final path", "[commit]") {
  TempDir dir;
  for (bool durable : {true, false}) {
    INFO("durable " << durable);
    const std::string name = durable ? "durable" : "fast";
    const fs::path tmp = folder_with(dir / (name + ".tmp"), "a", "data");
    commit_folder(tmp, dir / name, /*overwrite=*/false, durable);
    CHECK_FALSE(fs::exists(tmp));
    CHECK(read_text(dir / name / "a") == "data");
  }
}

TEST_CASE(
    "commit_folder without overwrite refuses an existing final path "
    "and keeps both folders",
    "[commit]") {
  TempDir dir;
  const fs::path old_ckpt = folder_with(dir / "ckpt", "old", "old data");
  const fs::path tmp = folder_with(dir / "ckpt.tmp", "new", "new data");
  CHECK_THAT(message_of<AlreadyExistsError>(
                 [&] { commit_folder(tmp, old_ckpt, false, true); }),
             Catch::Contains(old_ckpt.string()));
  CHECK(entries(old_ckpt) == std::set<std::string>{"old"});
  CHECK(read_text(old_ckpt / "old") == "old data");
  CHECK(entries(tmp) == std::set<std::string>{"new"});
  CHECK(read_text(tmp / "new") == "new data");
}

TEST_CASE("commit_folder with overwrite replaces the old checkpoint",
          "[commit]") {
  TempDir dir;
  const fs::path final_path =
      folder_with(dir / "ckpt", kCheckpointMetadataFile, "{}");
  fs::create_directory(final_path / "old_item");
  const fs::path tmp = folder_with(dir / "ckpt.tmp", "new", "new data");
  commit_folder(tmp, final_path, /*overwrite=*/true, /*durable=*/true);
  CHECK(entries(final_path) == std::set<std::string>{"new"});
  CHECK(read_text(final_path / "new") == "new data");
  // The old checkpoint, exchanged into the temporary name, is gone.
  CHECK(entries(dir.path()) == std::set<std::string>{"ckpt"});
}

TEST_CASE(
    "a temporary checkpoint is a temporary folder beside its final "
    "path",
    "[commit]") {
  TempDir dir;
  const fs::path final_path = dir / "run" / "step_7";
  TemporaryCheckpoint tmp(final_path, 0750);
  CHECK(tmp.final_path() == final_path);
  CHECK(tmp.folder().parent_path() == final_path.parent_path());
  CHECK(is_temporary_name(tmp.folder().filename().string()));
  CHECK_THAT(tmp.folder().filename().string(), Catch::StartsWith("step_7"));
  CHECK(fs::is_directory(tmp.folder()));
  CHECK(mode_of(tmp.folder()) == 0750);
  // Only the record of its owner, this process.
  CHECK(entries(tmp.folder()) == std::set<std::string>{kOwnerFile});
  const auto owner = parse_owner_record(read_text(tmp.folder() / kOwnerFile));
  REQUIRE(owner);
  CHECK(owner->pid == ::getpid());
  CHECK(owner->host == this_owner().host);
  CHECK(owner->boot_id == this_owner().boot_id);
  CHECK_FALSE(fs::exists(final_path));
}

TEST_CASE("add_folder makes a checkpointable folder in the temporary folder",
          "[commit]") {
  TempDir dir;
  TemporaryCheckpoint tmp(dir / "ckpt", 0700);
  const fs::path item = tmp.add_folder("item");
  CHECK(item == tmp.folder() / "item");
  CHECK(fs::is_directory(item));
  CHECK(mode_of(item) == 0700);
  CHECK(entries(tmp.folder()) == std::set<std::string>{kOwnerFile, "item"});
}

TEST_CASE(
    "committing a temporary checkpoint makes the final path appear "
    "with its metadata files",
    "[commit]") {
  TempDir dir;
  const fs::path final_path = dir / "ckpt";
  CheckpointInfo info;
  info.item_handlers = {{"item", "test.Handler"}};
  info.metrics = {{"loss", 1.5}};
  info.commit_timestamp_nsecs = 42;
  fs::path folder;
  {
    TemporaryCheckpoint tmp(final_path, 0755);
    folder = tmp.folder();
    write_text(tmp.add_folder("item") / "data", "payload");
    tmp.commit(info, 0600, /*overwrite=*/false, /*durable=*/true);
    CHECK_FALSE(fs::exists(folder));
  }
  // Destroying a committed checkpoint leaves the final path alone.
  CHECK(entries(dir.path()) == std::set<std::string>{"ckpt"});
  CHECK(entries(final_path) ==
        std::set<std::string>{kCheckpointMetadataFile, kMarkerFile,
                              kCommitSuccessFile, kChecksumsFile, "item"});
  CHECK(read_text(final_path / "item" / "data") == "payload");
  CHECK(read_text(final_path / kMarkerFile).empty());
  CHECK_THAT(read_text(final_path / kCommitSuccessFile),
             Catch::Contains(final_path.string()));
  CHECK(mode_of(final_path / kCheckpointMetadataFile) == 0600);
  const CheckpointInfo back = read_checkpoint_info(final_path);
  CHECK(back.layout == LayoutVersion::kV1);
  CHECK(back.item_handlers == info.item_handlers);
  CHECK(back.metrics == info.metrics);
  CHECK(back.commit_timestamp_nsecs == 42);
}

TEST_CASE("an uncommitted temporary checkpoint is removed when destroyed",
          "[commit]") {
  TempDir dir;
  fs::path folder;
  {
    TemporaryCheckpoint tmp(dir / "ckpt", 0755);
    folder = tmp.folder();
    write_text(tmp.add_folder("item") / "data", "x");
    REQUIRE(fs::exists(folder));
  }
  CHECK_FALSE(fs::exists(folder));
  CHECK(fs::is_empty(dir.path()));
}

TEST_CASE("discarding a temporary checkpoint is idempotent", "[commit]") {
  TempDir dir;
  TemporaryCheckpoint tmp(dir / "ckpt", 0755);
  tmp.discard();
  CHECK_FALSE(fs::exists(tmp.folder()));
  CHECK_NOTHROW(tmp.discard());
  CHECK(fs::is_empty(dir.path()));
}

TEST_CASE(
    "committing onto an existing checkpoint without overwrite leaves "
    "it unchanged and no temporary folder",
    "[commit]") {
  TempDir dir;
  const fs::path final_path = folder_with(dir / "ckpt", "keep", "old");
  TemporaryCheckpoint tmp(final_path, 0755);
  write_text(tmp.add_folder("item") / "data", "new");
  CHECK_THAT(message_of<AlreadyExistsError>([&] {
               tmp.commit(CheckpointInfo{}, 0644, /*overwrite=*/false,
                          /*durable=*/true);
             }),
             Catch::Contains(final_path.string()));
  CHECK_FALSE(fs::exists(tmp.folder()));
  CHECK(entries(dir.path()) == std::set<std::string>{"ckpt"});
  CHECK(entries(final_path) == std::set<std::string>{"keep"});
  CHECK(read_text(final_path / "keep") == "old");
}

TEST_CASE(
    "committing onto an existing checkpoint with overwrite replaces "
    "it",
    "[commit]") {
  TempDir dir;
  const fs::path final_path = folder_with(dir / "ckpt", "keep", "old");
  write_text(final_path / kCheckpointMetadataFile, "{}");
  TemporaryCheckpoint tmp(final_path, 0755);
  write_text(tmp.add_folder("item") / "data", "new");
  tmp.commit(CheckpointInfo{}, 0644, /*overwrite=*/true, /*durable=*/false);
  CHECK(entries(dir.path()) == std::set<std::string>{"ckpt"});
  CHECK_FALSE(fs::exists(final_path / "keep"));
  CHECK(read_text(final_path / "item" / "data") == "new");
  CHECK(fs::exists(final_path / kCheckpointMetadataFile));
}

TEST_CASE("overwrite refuses a folder that is no checkpoint, and a link",
          "[commit]") {
  TempDir dir;
  const fs::path mine = folder_with(dir / "mine", "notes.txt", "mine");
  const fs::path tmp = folder_with(dir / "mine.tmp", "new", "new data");
  CHECK_THAT(message_of<AlreadyExistsError>(
                 [&] { commit_folder(tmp, mine, true, false); }),
             Catch::Contains("holds no checkpoint"));
  CHECK(read_text(mine / "notes.txt") == "mine");
  fs::create_directory_symlink(mine, dir / "link");
  CHECK_THAT(message_of<AlreadyExistsError>(
                 [&] { commit_folder(tmp, dir / "link", true, false); }),
             Catch::Contains("symbolic link"));
  CHECK(fs::is_symlink(dir / "link"));
  CHECK(entries(tmp) == std::set<std::string>{"new"});
}

TEST_CASE("remove_quietly removes a tree and ignores a missing path",
          "[commit]") {
  TempDir dir;
  folder_with(dir / "a" / "b", "f", "x");
  remove_quietly(dir / "a");
  CHECK_FALSE(fs::exists(dir / "a"));
  CHECK_NOTHROW(remove_quietly(dir / "missing"));
  CHECK_NOTHROW(remove_quietly(dir / "missing" / "deeper"));
}

TEST_CASE("syncing a missing folder is NotFoundError", "[commit]") {
  TempDir dir;
  CHECK_THROWS_AS(fsync_directory(dir / "missing"), NotFoundError);
  CHECK_NOTHROW(fsync_directory(dir.path()));
}

TEST_CASE(
    "a save to P removes P's temporary folders left by dead saves and keeps "
    "the others",
    "[commit]") {
  TempDir dir;
  const fs::path p = dir / "model";
  ckpt::Value tree = ckpt::Value::dict();
  tree.set("w", ckpt::Value(1));
  ckpt::save(p, tree);
  // A save to P killed before its commit, by a process now gone.
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  ckpt::internal::SaveOwner dead = this_owner();
  dead.pid = child;
  dead.start_ticks.reset();
  auto leftover = [&](const fs::path& at, const ckpt::internal::SaveOwner& o) {
    fs::create_directories(at / "pytree");
    write_text(at / "pytree" / "part", "partial");
    write_text(at / kOwnerFile, ckpt::internal::owner_record_text(o));
    return at;
  };
  const fs::path died = leftover(ckpt::internal::temporary_path_for(p), dead);
  ckpt::internal::SaveOwner elsewhere = dead;
  elsewhere.host += "-elsewhere";
  const fs::path other_host =
      leftover(ckpt::internal::temporary_path_for(p), elsewhere);
  // Another checkpoint's dead save, whose name starts like P's.
  const fs::path sibling =
      leftover(ckpt::internal::temporary_path_for(dir / "model2"), dead);
  // This process saving P right now (its owner alive) is left alone.
  const fs::path alive =
      leftover(ckpt::internal::temporary_path_for(p), this_owner());

  ckpt::SaveOptions overwrite;
  overwrite.overwrite = true;
  ckpt::save(p, tree, overwrite);
  CHECK_FALSE(fs::exists(died));
  CHECK(fs::exists(other_host));
  CHECK(fs::exists(sibling));
  CHECK(fs::exists(alive));
  CHECK(ckpt::load(p).at("w").as_int() == 1);
}

TEST_CASE("a shortened temporary name is still known as its save's",
          "[commit]") {
  const std::string long_name(250, 'n');
  const std::string name =
      ckpt::internal::temporary_path_for(fs::path("/x") / long_name)
          .filename()
          .string();
  CHECK(name.size() <= 255);
  CHECK(ckpt::internal::is_temporary_of(name, long_name));
  CHECK_FALSE(ckpt::internal::is_temporary_of(name, std::string(250, 'm')));
  CHECK_FALSE(
      ckpt::internal::is_temporary_of(name, std::string(249, 'n') + "o"));
}
