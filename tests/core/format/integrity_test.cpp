// Integrity: every file a save writes is checksummed, and a damaged
// checkpoint never loads wrong data. The fault-injection sweep damages
// every file of a checkpoint in several ways and accepts only a clear error
// naming the file, or the exact data saved.
#include <ckpt/ckpt.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <thread>

#include "test_util.h"

using namespace ckpt;
using namespace ckpt::test;

namespace {

// A checkpoint of every kind of part: a pytree with an own dataset, packed
// arrays and scalars; a JSON document; metrics.
Checkpointables sample_items(int version) {
  std::vector<float> big(300 * 300);
  for (size_t i = 0; i < big.size(); ++i) big[i] = float(i % 977) + version;
  return {
      {"params",
       Value::dict({{"w", Array::copy(DType::kFloat32, {300, 300}, big.data())},
                    {"b", Array::from(std::vector<int32_t>{1, 2, version})},
                    {"step", version},
                    {"name", "run"}})},
      {"notes", Value::json({{"lr", 0.5}, {"version", version}})},
  };
}

SaveOptions with_metrics() {
  SaveOptions o;
  o.metrics = nlohmann::json{{"loss", 0.25}};
  return o;
}

// The files of a checkpoint, relative, sorted.
std::vector<std::string> files_of(const fs::path& checkpoint) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(checkpoint)) {
    if (e.is_regular_file()) {
      out.push_back(e.path().lexically_relative(checkpoint).string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string read_bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const fs::path& file, const std::string& bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << bytes;
}

struct Damage {
  std::string name;
  // Damages `file` (inside a copy of the checkpoint); `outside` is a
  // folder outside it.
  std::function<void(const fs::path& file, const fs::path& outside)> apply;
};

std::vector<Damage> damages() {
  auto flip_at = [](double where) {
    return [where](const fs::path& f, const fs::path&) {
      std::string b = read_bytes(f);
      if (b.empty()) return;
      size_t at = std::min(b.size() - 1, size_t(where * b.size()));
      b[at] = char(b[at] ^ 0x01);
      write_bytes(f, b);
    };
  };
  return {
      {"flip first byte", flip_at(0)},
      {"flip a byte at 1/3", flip_at(1.0 / 3)},
      {"flip a middle byte", flip_at(0.5)},
      {"flip last byte", flip_at(1.0)},
      {"truncate to half",
       [](const fs::path& f, const fs::path&) {
         fs::resize_file(f, fs::file_size(f) / 2);
       }},
      {"empty",
       [](const fs::path& f, const fs::path&) { fs::resize_file(f, 0); }},
      {"garbage of the same size",
       [](const fs::path& f, const fs::path&) {
         std::string b = read_bytes(f);
         for (size_t i = 0; i < b.size(); ++i)
           b[i] = char((i * 131 + 7) & 0xff);
         write_bytes(f, b);
       }},
      {"append a byte",
       [](const fs::path& f, const fs::path&) {
         std::ofstream(f, std::ios::binary | std::ios::app) << 'x';
       }},
      {"delete", [](const fs::path& f, const fs::path&) { fs::remove(f); }},
      {"FIFO in its place",
       [](const fs::path& f, const fs::path&) {
         fs::remove(f);
         REQUIRE(::mkfifo(f.c_str(), 0644) == 0);
       }},
      {"symlink to an intact copy outside",
       [](const fs::path& f, const fs::path& outside) {
         fs::path copy = outside / f.filename();
         fs::copy_file(f, copy, fs::copy_options::overwrite_existing);
         fs::remove(f);
         fs::create_symlink(copy, f);
       }},
  };
}

enum class Outcome { kExact, kError, kWrong };

// Loads every checkpointable and the metrics: the exact data saved, a
// ckpt::Error (its message in `message`), or anything else (wrong).
Outcome load_outcome(const fs::path& c, const Checkpointables& expected,
                     std::string& message) {
  try {
    Checkpointables got = load_checkpointables(c);
    Value metrics =
        load_checkpointables(c, {{kMetricsName, Value()}})[0].second;
    if (metrics.as_json() != nlohmann::json{{"loss", 0.25}}) {
      message = "metrics differ";
      return Outcome::kWrong;
    }
    Checkpointables want = expected;
    auto by_name = [](auto& a, auto& b) { return a.first < b.first; };
    std::sort(got.begin(), got.end(), by_name);
    std::sort(want.begin(), want.end(), by_name);
    if (got.size() != want.size()) {
      message = "loaded " + std::to_string(got.size()) + " checkpointables";
      return Outcome::kWrong;
    }
    for (size_t i = 0; i < got.size(); ++i) {
      if (got[i].first != want[i].first || !(got[i].second == want[i].second)) {
        message = "checkpointable " + got[i].first + " differs";
        return Outcome::kWrong;
      }
    }
    return Outcome::kExact;
  } catch (const Error& e) {
    message = e.what();
    return Outcome::kError;
  }
}

}  // namespace

TEST_CASE("a save records every file's checksum and its format version",
          "[integrity]") {
  TempDir dir;
  save_checkpointables(dir / "c", sample_items(1), with_metrics());
  const CheckpointInfo info = read_checkpoint_info(dir / "c");
  CHECK(info.checksums_recorded);
  CHECK(info.format_version == kCheckpointFormatVersion);
  CHECK(info.custom_metadata.empty());  // the version is not user metadata
  const std::string record = read_text(dir / "c" / kChecksumsFile);
  for (const std::string& f : files_of(dir / "c")) {
    if (f == kChecksumsFile) continue;
    INFO(f);
    CHECK(record.find(" " + f + "\n") != std::string::npos);
  }
  // The array file is checked by the pytree handler: size only.
  CHECK(record.find("\nh ") != std::string::npos);
  CHECK(check_checkpointable_bytes(dir / "c", "params"));
  CHECK(check_checkpointable_bytes(dir / "c", "notes"));
}

TEST_CASE(
    "fault injection: every file damaged every way is a clear error naming "
    "it, never wrong data",
    "[integrity][fault]") {
  TempDir dir;
  const Checkpointables items = sample_items(7);
  const fs::path pristine = dir / "pristine";
  save_checkpointables(pristine, items, with_metrics());
  std::string error;
  const Outcome pristine_outcome = load_outcome(pristine, items, error);
  INFO(error);
  REQUIRE(pristine_outcome == Outcome::kExact);
  fs::create_directories(dir / "outside");
  size_t tries = 0, clear = 0, exact = 0, wrong = 0;
  for (const std::string& file : files_of(pristine)) {
    for (const Damage& d : damages()) {
      const fs::path c = dir / ("c" + std::to_string(tries++));
      fs::copy(pristine, c, fs::copy_options::recursive);
      d.apply(c / file, dir / "outside");
      std::string message;
      const Outcome outcome = load_outcome(c, items, message);
      if (outcome == Outcome::kExact) {
        ++exact;
      } else if (outcome == Outcome::kError) {
        ++clear;
        INFO(file << ", " << d.name << ": " << message);
        // Named: the file, or the record that covers it.
        CHECK((message.find(fs::path(file).filename().string()) !=
                   std::string::npos ||
               message.find(kChecksumsFile) != std::string::npos));
      } else {
        ++wrong;
        FAIL_CHECK(file << ", " << d.name << ": " << message);
      }
      fs::remove_all(c);
    }
  }
  std::cout << "fault injection (damaged files): " << tries << " tries, "
            << clear << " clear errors, " << exact << " exact data, " << wrong
            << " wrong successes\n";
  CHECK(wrong == 0);
  CHECK(clear + exact == tries);
}

TEST_CASE("a removed checksum record is data loss; older checkpoints load",
          "[integrity]") {
  TempDir dir;
  const Checkpointables items = sample_items(2);
  save_checkpointables(dir / "c", items);
  fs::copy(dir / "c", dir / "old", fs::copy_options::recursive);
  fs::remove(dir / "c" / kChecksumsFile);
  std::string message =
      message_of<DataLossError>([&] { load_checkpointables(dir / "c"); });
  CHECK_THAT(message,
             Catch::Contains(kChecksumsFile) && Catch::Contains("missing"));
  // A checkpoint as ckpt wrote it before checksums: no version, no record.
  fs::remove(dir / "old" / kChecksumsFile);
  std::string meta = read_text(dir / "old" / kCheckpointMetadataFile);
  auto j = nlohmann::json::parse(meta);
  j.erase("ckpt_format_version");
  write_text(dir / "old" / kCheckpointMetadataFile, j.dump());
  const CheckpointInfo info = read_checkpoint_info(dir / "old");
  CHECK_FALSE(info.checksums_recorded);
  CHECK_FALSE(info.format_version);
  CHECK(load_checkpointables(dir / "old").size() == 2);
  CHECK_FALSE(check_checkpointable_bytes(dir / "old", "notes"));
  CommandResult v = run_command(std::string(CKPT_TOOL) + " verify " +
                                (dir / "old").string() + " 2>&1");
  INFO(v.output);
  CHECK(v.status == 0);
  CHECK(v.output.find("notes: no checksums recorded") != std::string::npos);
}

TEST_CASE("a newer format is refused, and a changed value in metadata too",
          "[integrity]") {
  TempDir dir;
  save_checkpointables(dir / "c", sample_items(3));
  // "value": 3 -> 4 in the pytree's _METADATA: loaded 4 before checksums.
  std::string meta = read_text(dir / "c" / "params" / "_METADATA");
  size_t at = meta.find("\"value\": 3");
  if (at == std::string::npos) at = meta.find("\"value\":3");
  REQUIRE(at != std::string::npos);
  meta[meta.find('3', at)] = '4';
  write_text(dir / "c" / "params" / "_METADATA", meta);
  CHECK_THAT(
      message_of<DataLossError>([&] { load_checkpointables(dir / "c"); }),
      Catch::Contains("_METADATA"));
  CommandResult v = run_command(std::string(CKPT_TOOL) + " verify " +
                                (dir / "c").string() + " 2>&1");
  INFO(v.output);
  CHECK(v.status == 1);
  CHECK(v.output.find("params: damaged") != std::string::npos);
  CHECK(v.output.find("notes: ok") != std::string::npos);
  // A format from the future is refused rather than half understood.
  save_checkpointables(dir / "d", sample_items(3));
  auto j =
      nlohmann::json::parse(read_text(dir / "d" / kCheckpointMetadataFile));
  j["ckpt_format_version"] = 99;
  write_text(dir / "d" / kCheckpointMetadataFile, j.dump());
  reseal_checksums(dir / "d");
  CHECK_THAT(
      message_of<InvalidLayoutError>([&] { read_checkpoint_info(dir / "d"); }),
      Catch::Contains("format 99"));
}

TEST_CASE("overwrite replaces only checkpoints and empty folders",
          "[integrity][overwrite]") {
  TempDir dir;
  SaveOptions overwrite;
  overwrite.overwrite = true;
  // A folder of the user's files is never deleted.
  fs::create_directories(dir / "mine");
  write_text(dir / "mine" / "thesis.tex", "years of work");
  std::string message = message_of<AlreadyExistsError>([&] {
    save(dir / "mine", Value::dict({{"a", 1}}), overwrite);
  });
  CHECK_THAT(message, Catch::Contains("holds no checkpoint"));
  CHECK(read_text(dir / "mine" / "thesis.tex") == "years of work");
  // A file is not replaced either.
  write_text(dir / "file", "keep");
  CHECK_THROWS_AS(save(dir / "file", Value::dict({{"a", 1}}), overwrite),
                  AlreadyExistsError);
  CHECK(read_text(dir / "file") == "keep");
  // A symbolic link is refused, and stays a link to its checkpoint.
  save(dir / "target", Value::dict({{"a", 1}}));
  fs::create_directory_symlink(dir / "target", dir / "link");
  message = message_of<AlreadyExistsError>([&] {
    save(dir / "link", Value::dict({{"a", 2}}), overwrite);
  });
  CHECK_THAT(message, Catch::Contains("symbolic link"));
  CHECK(fs::is_symlink(dir / "link"));
  CHECK(load(dir / "link").at("a").as_int() == 1);
  // An empty folder and a checkpoint are replaced.
  fs::create_directories(dir / "empty");
  save(dir / "empty", Value::dict({{"a", 3}}), overwrite);
  CHECK(load(dir / "empty").at("a").as_int() == 3);
  save(dir / "target", Value::dict({{"a", 4}}), overwrite);
  CHECK(load(dir / "target").at("a").as_int() == 4);
  // No temporary folder is left behind by the refusals.
  for (const auto& e : fs::directory_iterator(dir.path())) {
    CHECK(e.path().filename().string().find(".orbax-checkpoint-tmp") ==
          std::string::npos);
  }
}

TEST_CASE("a 220-byte checkpoint name can be saved and loaded", "[integrity]") {
  TempDir dir;
  const std::string name(220, 'n');
  save(dir / name, Value::dict({{"a", 5}}));
  CHECK(load(dir / name).at("a").as_int() == 5);
  SaveOptions overwrite;
  overwrite.overwrite = true;
  save(dir / name, Value::dict({{"a", 6}}), overwrite);
  CHECK(load(dir / name).at("a").as_int() == 6);
}

// The outcomes of loads racing a writer that overwrites the checkpoint
// and, every sixteenth version, deletes it (renamed away, then removed, as
// the Checkpointer deletes a step) before saving it again.
TEST_CASE("loads racing overwrites and deletes see one whole version",
          "[integrity][concurrent]") {
  TempDir dir;
  const fs::path c = dir / "c";
  save_checkpointables(c, sample_items(0));
  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  std::thread writer([&] {
    SaveOptions o;
    o.overwrite = true;
    for (int v = 1; !stop; ++v) {
      if (v % 16 == 0) {
        fs::rename(c, dir / "away");
        fs::remove_all(dir / "away");
      }
      save_checkpointables(c, sample_items(v), o);
      written = v;
    }
  });
  size_t whole_new = 0, whole_old = 0, not_found = 0, data_loss = 0,
         gave_up = 0, other = 0, mixed = 0;
  std::string last_error;
  const auto cap = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  size_t tries = 0;
  while ((tries < 3000 || written < 200) &&
         std::chrono::steady_clock::now() < cap) {
    ++tries;
    try {
      Checkpointables got = load_checkpointables(c);
      const int after = written;
      int64_t step = -1, noted = -2;
      for (const auto& [name, value] : got) {
        if (name == "params") step = value.at("step").as_int();
        if (name == "notes") noted = value.as_json()["version"].get<int64_t>();
      }
      if (step != noted) {
        ++mixed;
      } else if (step >= after) {
        ++whole_new;
      } else {
        ++whole_old;
      }
    } catch (const Error& e) {
      last_error = e.what();
      switch (e.kind()) {
        case ErrorKind::kNotFound:
          ++not_found;
          break;
        case ErrorKind::kDataLoss:
          ++data_loss;
          break;
        case ErrorKind::kTimeout:
          ++gave_up;
          break;
        default:
          ++other;
      }
    }
  }
  stop = true;
  writer.join();
  std::cout << "loads racing " << written
            << " overwrites and deletes: " << whole_new << " whole new, "
            << whole_old << " whole old (replaced while read), " << not_found
            << " not found, " << gave_up << " gave up (kept changing), "
            << data_loss << " data loss, " << other << " other errors, "
            << mixed << " mixed\n";
  if (!last_error.empty()) std::cout << "last error: " << last_error << "\n";
  CHECK(mixed == 0);
  CHECK(data_loss == 0);
  CHECK(other == 0);
  CHECK(whole_new + whole_old > 0);
}

TEST_CASE(
    "metadata and read_checkpoint_info racing overwrites never see damage",
    "[integrity][concurrent]") {
  TempDir dir;
  const fs::path c = dir / "c";
  save_checkpointables(c, sample_items(0));
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    SaveOptions o;
    o.overwrite = true;
    for (int v = 1; !stop; ++v) save_checkpointables(c, sample_items(v), o);
  });
  size_t ok = 0, data_loss = 0, other = 0;
  std::string last_error;
  for (int i = 0; i < 1000; ++i) {
    try {
      const CheckpointablesMetadata m = checkpointables_metadata(c);
      const CheckpointInfo info = read_checkpoint_info(c);
      ok += !m.metadata.empty() && !info.item_handlers.empty();
    } catch (const Error& e) {
      last_error = e.what();
      ++(e.kind() == ErrorKind::kDataLoss ? data_loss : other);
    }
  }
  stop = true;
  writer.join();
  std::cout << "metadata racing overwrites: " << ok << " ok, " << data_loss
            << " data loss, " << other << " other errors\n";
  if (!last_error.empty()) std::cout << "last error: " << last_error << "\n";
  CHECK(data_loss == 0);
  CHECK(ok > 0);
}

TEST_CASE("a full disk fails the save and keeps the old checkpoint",
          "[integrity][enospc]") {
  TempDir dir;
  const fs::path mnt = dir / "small";
  fs::create_directories(mnt);
  if (::geteuid() != 0 ||
      ::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=2m") != 0) {
    WARN("skipped: mounting a small tmpfs needs root");
    return;
  }
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{mnt};
  const fs::path c = mnt / "c";
  save(c, Value::dict({{"a", Array::from(std::vector<int32_t>{1, 2, 3})}}));
  std::vector<float> big(1 << 20);  // 4 MiB: more than the disk
  SaveOptions overwrite;
  overwrite.overwrite = true;
  CHECK_THROWS_AS(save(c,
                       Value::dict({{"a", Array::copy(DType::kFloat32,
                                                      {1 << 20}, big.data())}}),
                       overwrite),
                  NoSpaceError);
  CHECK(load(c).at("a").as_array() ==
        Array::from(std::vector<int32_t>{1, 2, 3}));
  CHECK(check_checkpointable_bytes(c, kDefaultCheckpointableName));
  // Nothing else is left on the disk.
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(mnt)) {
    (void)e;
    ++entries;
  }
  CHECK(entries == 1);
  // A fresh save that does not fit leaves nothing either.
  CHECK_THROWS_AS(
      save(mnt / "d", Value::dict({{"a", Array::copy(DType::kFloat32, {1 << 20},
                                                     big.data())}})),
      NoSpaceError);
  CHECK_FALSE(fs::exists(mnt / "d"));
}

TEST_CASE("a _CHECKPOINT_METADATA nested 70,000 deep is data loss, not a crash",
          "[integrity]") {
  TempDir dir;
  save_checkpointables(dir / "c", sample_items(4));
  strip_checksums(dir / "c");  // as a checkpoint without checksums
  const fs::path meta = dir / "c" / kCheckpointMetadataFile;
  std::string text = read_text(meta);
  text.insert(text.rfind('}'),
              ", \"custom_metadata\": {\"deep\": " + std::string(70000, '[') +
                  std::string(70000, ']') + "}");
  fs::remove(meta);
  write_text(meta, text);
  CHECK_THAT(
      message_of<DataLossError>([&] { read_checkpoint_info(dir / "c"); }),
      Catch::Contains(meta.string()) && Catch::Contains("deeper"));
  for (const std::string command : {"info", "verify", "tree"}) {
    CommandResult r = run_command(std::string(CKPT_TOOL) + " " + command + " " +
                                  (dir / "c").string() + " 2>&1");
    INFO(command << ": " << r.output);
    CHECK(r.status == 1);
    CHECK(r.output.find("deeper than") != std::string::npos);
  }
}

TEST_CASE(
    "loading every checkpointable of a checkpoint that lost one (being "
    "deleted) is data loss, not a smaller checkpoint",
    "[integrity]") {
  TempDir dir;
  const fs::path c = dir / "c";
  save_checkpointables(c, sample_items(3), with_metrics());
  fs::remove_all(c / "params");
  const std::string message =
      message_of<DataLossError>([&] { load_checkpointables(c); });
  CHECK_THAT(message, Catch::Contains("'params'") &&
                          Catch::Contains(c.string()) &&
                          Catch::Contains("missing"));
  // Naming what to load: the one that is there loads, the other is not
  // found.
  CHECK(load_checkpointables(c, {{"notes", Value()}})[0]
            .second.as_json()["version"] == 3);
  CHECK_THROWS_AS(load_checkpointables(c, {{"params", Value()}}),
                  NotFoundError);
  // Without checksums (Orbax's, older ckpt) a deleted checkpointable is a
  // smaller checkpoint, as Orbax's compatibility tests expect.
  strip_checksums(c);
  const Checkpointables rest = load_checkpointables(c);
  REQUIRE(rest.size() == 1);
  CHECK(rest[0].first == "notes");
}
