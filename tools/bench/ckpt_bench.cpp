// The C++ half of the pytree benchmark (see README.md): times ckpt's save,
// fsync'd save, async blocking tier and load of one workload, and the limit
// they are compared with: raw write()/read() of the same bytes into one
// file, and one memcpy of them. Prints one JSON object of medians.
//
//   ckpt_bench --workload W1 --runs 5 --dir /tmp/ckpt-bench [--scale 1]
//   ckpt_bench --workload W1 --rss save|async|load ...   (peak extra RSS)
//   ckpt_bench --workload W1 --integrity --runs 21 ...  (loads with and
//     without integrity records, in turn: the cost of the checks)
#include <ckpt/checkpoint.h>
#include <ckpt/context.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "buffer.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct Workload {
  ckpt::Value tree;
  std::vector<ckpt::Array> arrays;  // every array leaf, for raw I/O
  uint64_t bytes = 0;
};

ckpt::Array filled(int64_t elements, uint32_t seed) {
  ckpt::Array a = ckpt::Array::zeros(ckpt::DType::kFloat32, {elements});
  float* p = a.data_as<float>();
  std::minstd_rand rng(seed);
  for (int64_t i = 0; i < elements; ++i)
    p[i] = static_cast<float>(rng() % 1000) * 0.001f;
  return a;
}

// W1: 64 float32 arrays of 16 MiB in a two-level dict (1 GiB);
// W2: 20,000 float32 arrays of 1,000 elements (80 MB);
// W3: four 64 MiB arrays, 5,000 small arrays, 100 scalars and 100 strings.
// `scale` divides the large arrays (W1, W3) for quick runs.
Workload make_workload(const std::string& name, int scale) {
  Workload w;
  w.tree = ckpt::Value::dict();
  auto add = [&](ckpt::Value& parent, const std::string& key,
                 int64_t elements) {
    ckpt::Array a =
        filled(elements, static_cast<uint32_t>(w.arrays.size() + 1));
    parent.set(key, a);
    w.arrays.push_back(a);
    w.bytes += a.nbytes();
  };
  if (name == "W1") {
    for (int i = 0; i < 8; ++i) {
      ckpt::Value layer = ckpt::Value::dict();
      for (int j = 0; j < 8; ++j)
        add(layer, "w" + std::to_string(j), (4 << 20) / scale);
      w.tree.set("layer" + std::to_string(i), layer);
    }
  } else if (name == "W2") {
    for (int i = 0; i < 200; ++i) {
      ckpt::Value module = ckpt::Value::dict();
      for (int j = 0; j < 100; ++j) add(module, "p" + std::to_string(j), 1000);
      w.tree.set("m" + std::to_string(i), module);
    }
  } else if (name == "W3") {
    ckpt::Value big = ckpt::Value::dict();
    for (int i = 0; i < 4; ++i)
      add(big, "emb" + std::to_string(i), (16 << 20) / scale);
    w.tree.set("big", big);
    ckpt::Value small = ckpt::Value::dict();
    for (int i = 0; i < 5000; ++i)
      add(small, "s" + std::to_string(i), 64 + (i % 7) * 100);
    w.tree.set("small", small);
    ckpt::Value meta = ckpt::Value::dict();
    for (int i = 0; i < 100; ++i) {
      meta.set("step" + std::to_string(i), int64_t{i} * 1000);
      meta.set("tag" + std::to_string(i), "run-" + std::to_string(i));
    }
    w.tree.set("meta", meta);
  } else {
    throw std::invalid_argument("unknown workload " + name);
  }
  return w;
}

// The same tree with every array flagged immutable (shared, not copied):
// what a synchronous save could write without taking a snapshot.
ckpt::Value immutable_view(const ckpt::Value& v) {
  switch (v.kind()) {
    case ckpt::Value::Kind::kArray: {
      const ckpt::Array& a = v.as_array();
      return ckpt::Array::share(a.dtype(), a.shape(), a.data(), a.owner(), true,
                                a.strides());
    }
    case ckpt::Value::Kind::kDict: {
      ckpt::Value::Dict d;
      for (const auto& [k, child] : v.as_dict())
        d.emplace_back(k, immutable_view(child));
      return ckpt::Value::dict(std::move(d));
    }
    default:
      return v;
  }
}

// `from` copied to `to` as a checkpoint without integrity records, as an
// older ckpt wrote it: no _CHECKSUMS, no format version, no pytree format
// marker or array-file structure checksum (per-array checksums stay). A
// load of it against a load of `from` is the cost of the checks.
void copy_without_checks(const fs::path& from, const fs::path& to) {
  fs::remove_all(to);
  fs::copy(from, to, fs::copy_options::recursive);
  fs::remove(to / ckpt::kChecksumsFile);
  auto strip = [](const fs::path& file,
                  std::initializer_list<const char*> keys) {
    std::ifstream in(file);
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(in);
    for (const char* k : keys) j.erase(k);
    std::ofstream(file, std::ios::trunc) << j.dump();
  };
  strip(to / ckpt::kCheckpointMetadataFile, {"ckpt_format_version"});
  // _METADATA's integrity fields come last; cut them from the text so that
  // the rest (and its parse time) stays byte for byte the same.
  const fs::path meta = to / "state" / ckpt::kPytreeMetadataFile;
  std::ifstream in(meta);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  const size_t from_at = text.find(",\n \"ckpt_pytree_format\"");
  const size_t end_at = text.rfind("\n}");
  if (from_at == std::string::npos || end_at == std::string::npos ||
      end_at < from_at) {
    throw std::runtime_error("unexpected " + meta.string());
  }
  text.erase(from_at, end_at - from_at);
  std::ofstream(meta, std::ios::trunc) << text;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Round `r` of the integrity cost: a load of `checked` and one of
// `unchecked` (the same checkpoint without integrity records), the first
// of them alternating between rounds.
void load_in_turn(const fs::path& checked, const fs::path& unchecked, int r,
                  std::vector<double>& checked_t,
                  std::vector<double>& unchecked_t) {
  for (int pass = 0; pass < 2; ++pass) {
    const bool is_checked = (pass == 0) == (r % 2 == 0);
    auto start = Clock::now();
    ckpt::Value loaded = ckpt::load(is_checked ? checked : unchecked);
    (is_checked ? checked_t : unchecked_t).push_back(seconds_since(start));
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The cost of the integrity checks as a fraction of an unchecked load:
// the median of the differences of the loads timed side by side (checked
// and unchecked of the same round), over the median unchecked load. Pairs
// share the machine's state of the moment, so a load time that jumps
// between levels on a shared machine cancels out, where the ratio of two
// medians can land one on each level.
double paired_cost(const std::vector<double>& checked,
                   const std::vector<double>& unchecked) {
  std::vector<double> differences;
  for (size_t i = 0; i < checked.size() && i < unchecked.size(); ++i) {
    differences.push_back(checked[i] - unchecked[i]);
  }
  return median(differences) / median(unchecked);
}

void write_all(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t k = ::write(fd, p, n);
    if (k <= 0) throw std::runtime_error("write failed");
    p += k;
    n -= static_cast<size_t>(k);
  }
}

double raw_write(const Workload& w, const fs::path& file, bool sync) {
  auto start = Clock::now();
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  for (const ckpt::Array& a : w.arrays) write_all(fd, a.data(), a.nbytes());
  if (sync) ::fsync(fd);
  ::close(fd);
  return seconds_since(start);
}

double raw_read(const Workload& w, const fs::path& file, bool huge) {
  auto start = Clock::now();
  int fd = ::open(file.c_str(), O_RDONLY);
  std::vector<std::unique_ptr<Buffer>> buffers;
  for (const ckpt::Array& a : w.arrays) {
    buffers.push_back(std::make_unique<Buffer>(a.nbytes(), huge));
    char* p = static_cast<char*>(buffers.back()->data);
    size_t n = a.nbytes();
    while (n > 0) {
      ssize_t k = ::read(fd, p, n);
      if (k <= 0) throw std::runtime_error("read failed");
      p += k;
      n -= static_cast<size_t>(k);
    }
  }
  ::close(fd);
  return seconds_since(start);
}

// One memcpy of the data into fresh memory, as a snapshot makes it.
double one_memcpy(const Workload& w) {
  auto start = Clock::now();
  std::vector<std::unique_ptr<Buffer>> copies;
  for (const ckpt::Array& a : w.arrays) {
    copies.push_back(std::make_unique<Buffer>(a.nbytes()));
    std::memcpy(copies.back()->data, a.data(), a.nbytes());
  }
  return seconds_since(start);
}

// VmHWM (peak resident set) of this process, in bytes.
uint64_t peak_rss() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

// Resets VmHWM to the current RSS (Linux >= 4.0).
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

ckpt::ContextOptions context_options(bool fsync) {
  ckpt::ContextOptions o;
  o.fsync = fsync;
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ckpt pytree benchmark (C++ half)"};
  std::string workload = "W1", rss_mode, dir = "/tmp/ckpt-bench";
  int runs = 5, scale = 1;
  app.add_option("--workload", workload);
  app.add_option("--runs", runs);
  app.add_option("--scale", scale);
  app.add_option("--dir", dir);
  app.add_option("--rss", rss_mode, "save, async or load: peak extra RSS only");
  bool integrity_only = false;
  app.add_flag("--integrity", integrity_only,
               "only loads, with and without integrity records, in turn");
  std::string profile_step;
  app.add_option("--profile", profile_step,
                 "save or load: only that step, --runs times, untimed "
                 "set-up outside it (run under perf record)")
      ->check(CLI::IsMember({"save", "load"}));
  CLI11_PARSE(app, argc, argv);

  fs::create_directories(dir);
  fs::path base = fs::path(dir) / ("ckpt-" + workload);
  ckpt::SaveOptions overwrite;
  overwrite.overwrite = true;
  nlohmann::json out = {{"workload", workload}};

  if (rss_mode == "load") {
    // The checkpoint is written by the timing run before; measure only the
    // load in this fresh process.
    reset_peak_rss();
    uint64_t before = peak_rss();
    ckpt::Context context(context_options(false));
    ckpt::Value loaded = ckpt::load(base);
    out["rss_extra_bytes"] = peak_rss() - before;
    std::cout << out.dump() << std::endl;
    return 0;
  }

  Workload w = make_workload(workload, scale);
  out["bytes"] = w.bytes;
  out["arrays"] = w.arrays.size();

  if (integrity_only) {
    // Saved once and settled: nothing but the loads is timed or running.
    ckpt::Context context(context_options(false));
    ckpt::save(base, w.tree, overwrite);
    const fs::path unchecked =
        fs::path(dir) / ("ckpt-" + workload + "-unchecked");
    copy_without_checks(base, unchecked);
    ::sync();
    std::vector<double> checked_t, unchecked_t;
    for (int r = 0; r < runs; ++r) {
      load_in_turn(base, unchecked, r, checked_t, unchecked_t);
    }
    fs::remove_all(unchecked);
    fs::remove_all(base);
    out["samples"] = {{"ckpt_load", checked_t},
                      {"ckpt_load_unchecked", unchecked_t}};
    out["ckpt_load"] = median(checked_t);
    out["ckpt_load_unchecked"] = median(unchecked_t);
    out["integrity_cost"] = paired_cost(checked_t, unchecked_t);
    std::cout << out.dump() << std::endl;
    return 0;
  }

  if (!profile_step.empty()) {
    // What a profiler should see: the step alone, repeated; each round's
    // set-up (removing the previous output, sync) is outside the timed
    // part, which is printed per round.
    ckpt::Context context(context_options(false));
    ckpt::save(base, w.tree, overwrite);
    std::vector<double> times;
    for (int r = 0; r < runs; ++r) {
      if (profile_step == "save") {
        fs::remove_all(base);
        ::sync();
      }
      auto start = Clock::now();
      if (profile_step == "save") {
        ckpt::save(base, w.tree);
      } else {
        ckpt::Value loaded = ckpt::load(base);
      }
      times.push_back(seconds_since(start));
    }
    out["profile"] = profile_step;
    out["samples"] = times;
    out["median"] = median(times);
    std::cout << out.dump() << std::endl;
    return 0;
  }

  if (!rss_mode.empty()) {
    ckpt::Context context(context_options(false));
    reset_peak_rss();
    uint64_t before = peak_rss();
    if (rss_mode == "save") {
      ckpt::save(base, w.tree, overwrite);
    } else {
      ckpt::save_async(base, w.tree, overwrite).result();
    }
    out["rss_extra_bytes"] = peak_rss() - before;
    std::cout << out.dump() << std::endl;
    return 0;
  }

  std::vector<double> save_t, save_sync_t, block_t, async_total_t, load_t;
  std::vector<double> load_unchecked_t;
  const fs::path unchecked =
      fs::path(dir) / ("ckpt-" + workload + "-unchecked");
  std::vector<double> raw_w, raw_w_sync, raw_r, copy_t;
  fs::path raw_file = fs::path(dir) / ("raw-" + workload + ".bin");
  // Every timed step starts from a clean page cache state for writes: the
  // previous output is removed and dirty data flushed, untimed.
  auto settle = [&] {
    fs::remove_all(base);
    fs::remove(raw_file);
    ::sync();
  };
  ckpt::Value immutable_tree = immutable_view(w.tree);
  auto timed_save = [&](bool fsync, const ckpt::Value& tree) {
    settle();
    ckpt::Context context(context_options(fsync));
    auto start = Clock::now();
    ckpt::save(base, tree);
    return seconds_since(start);
  };
  std::vector<double> save_immutable_t;
  for (int r = 0; r < runs; ++r) {
    save_sync_t.push_back(timed_save(true, w.tree));
    save_t.push_back(timed_save(false, w.tree));
    save_immutable_t.push_back(timed_save(false, immutable_tree));
    {
      settle();
      ckpt::Context context(context_options(false));
      auto start = Clock::now();
      ckpt::AsyncSave pending = ckpt::save_async(base, w.tree);
      block_t.push_back(seconds_since(start));
      pending.result();
      async_total_t.push_back(seconds_since(start));
    }
    {
      // The same checkpoint with and without integrity records, in turn.
      copy_without_checks(base, unchecked);
      ::sync();
      ckpt::Context context(context_options(false));
      load_in_turn(base, unchecked, r, load_t, load_unchecked_t);
      fs::remove_all(unchecked);
    }
    settle();
    raw_w_sync.push_back(raw_write(w, raw_file, true));
    settle();
    raw_w.push_back(raw_write(w, raw_file, false));
    ::sync();
    // The limit is the better of plain and huge-page buffers.
    raw_r.push_back(
        std::min(raw_read(w, raw_file, false), raw_read(w, raw_file, true)));
    copy_t.push_back(one_memcpy(w));
  }
  fs::remove(raw_file);
  out["samples"] = {{"ckpt_save", save_t},
                    {"ckpt_save_immutable", save_immutable_t},
                    {"ckpt_save_fsync", save_sync_t},
                    {"ckpt_async_blocking", block_t},
                    {"ckpt_load", load_t},
                    {"ckpt_load_unchecked", load_unchecked_t},
                    {"raw_write", raw_w},
                    {"raw_write_fsync", raw_w_sync},
                    {"raw_read", raw_r},
                    {"memcpy", copy_t}};
  out["ckpt_save"] = median(save_t);
  out["ckpt_save_immutable"] = median(save_immutable_t);
  out["ckpt_save_fsync"] = median(save_sync_t);
  out["ckpt_async_blocking"] = median(block_t);
  out["ckpt_async_total"] = median(async_total_t);
  out["ckpt_load"] = median(load_t);
  out["ckpt_load_unchecked"] = median(load_unchecked_t);
  out["integrity_cost"] = paired_cost(load_t, load_unchecked_t);
  out["raw_write"] = median(raw_w);
  out["raw_write_fsync"] = median(raw_w_sync);
  out["raw_read"] = median(raw_r);
  out["memcpy"] = median(copy_t);
  std::cout << out.dump() << std::endl;
  return 0;
}
