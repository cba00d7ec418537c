// The C++ half of the pytree benchmark (see README.md): one timed step of
// one workload per process, so that every tool starts from a fresh process
// in the same page-cache state (bench.py runs the processes and the
// peers). Prints one JSON object: the step's seconds and the peak resident
// memory it added.
//
//   ckpt_bench --workload W1 --step STEP --dir /tmp/ckpt-bench [--scale 1]
//              [--memory plain|populated|huge|mapped] [--threads 1|2]
//   ckpt_bench --workload W2 --profile save|load --runs 12   (for perf)
//   ckpt_bench --workload W2 --integrity --runs 41  (loads with and
//     without integrity records, in turn: the cost of the checks)
//
// Steps: ckpt's save, save_fsync, save_immutable, async (the blocking
// tier), save_orbax (in Orbax's format: OCDBT, zarr3, zstd), load (of
// --path when given), load_into (into the caller's buffers, already in memory),
// load_partial (a 1% subset of the arrays), load_unchecked (a copy without
// integrity records, made by prepare_unchecked); the baselines raw_write,
// raw_write_fsync, raw_read, raw_read_partial and memcpy, with --memory and
// --threads. Saves write into --dir (replacing the previous output, then
// sync(), untimed); loads read what the last save of their tool wrote.
#include <ckpt/checkpoint.h>
#include <ckpt/context.h>
#include <ckpt/registry.h>
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
#include <string>
#include <thread>
#include <vector>

#include "buffer.h"
#include "step_meter.h"
#include "timing.h"

namespace fs = std::filesystem;
using ckpt_bench::Clock;
using ckpt_bench::median;
using ckpt_bench::seconds_since;

namespace {

using ckpt_bench::StepMeter;

struct Workload {
  ckpt::Value tree;
  std::vector<ckpt::Array> arrays;              // every array leaf, for raw I/O
  std::vector<std::vector<std::string>> paths;  // their key paths
  uint64_t bytes = 0;
};

// The elements bench.py's peers build too, bit for bit: the 32 bits
// x = i * 2654435761 + seed * 40503 (mod 2^32), mixed by a 32-bit hash, of
// which the top 24 make a float32 in [-0.5, 0.5). Each element has 24
// random bits, so that, like trained weights, the data does not compress
// (a compressing writer gains nothing a real checkpoint would not give
// it). With `shapes_only`, an array of that shape without memory: for
// steps that need only the workload's shapes (loads, reads), so that their
// process holds nothing else.
ckpt::Array filled(int64_t elements, uint32_t seed, bool shapes_only) {
  if (shapes_only) {
    return ckpt::Array::borrow(ckpt::DType::kFloat32, {elements}, nullptr);
  }
  ckpt::Array a = ckpt::Array::zeros(ckpt::DType::kFloat32, {elements});
  float* p = a.data_as<float>();
  const uint32_t base = seed * 40503u;
  for (int64_t i = 0; i < elements; ++i) {
    uint32_t x = static_cast<uint32_t>(i) * 2654435761u + base;
    x ^= x >> 16;
    x *= 0x7FEB352Du;
    x ^= x >> 15;
    x *= 0x846CA68Bu;
    x ^= x >> 16;
    p[i] = static_cast<float>(x >> 8) * (1.0f / 16777216.0f) - 0.5f;
  }
  return a;
}

// W1: 64 float32 arrays of 16 MiB in a two-level dict (1 GiB);
// W2: 20,000 float32 arrays of 1,000 elements (80 MB);
// W3: four 64 MiB arrays, 5,000 small arrays, 100 scalars and 100 strings;
// W4: 256 float32 arrays of 32 MiB in a two-level dict (8 GiB).
// `scale` divides the large arrays (W1, W3, W4) for quick runs.
Workload make_workload(const std::string& name, int scale,
                       bool shapes_only = false) {
  Workload w;
  w.tree = ckpt::Value::dict();
  auto add = [&](ckpt::Value& parent, const std::string& group,
                 const std::string& key, int64_t elements) {
    ckpt::Array a = filled(elements, static_cast<uint32_t>(w.arrays.size() + 1),
                           shapes_only);
    parent.set(key, a);
    w.arrays.push_back(a);
    w.paths.push_back({group, key});
    w.bytes += a.nbytes();
  };
  auto layers = [&](int count, int per_layer, int64_t elements) {
    for (int i = 0; i < count; ++i) {
      const std::string group = "layer" + std::to_string(i);
      ckpt::Value layer = ckpt::Value::dict();
      for (int j = 0; j < per_layer; ++j)
        add(layer, group, "w" + std::to_string(j), elements);
      w.tree.set(group, layer);
    }
  };
  if (name == "W1") {
    layers(8, 8, (4 << 20) / scale);
  } else if (name == "W4") {
    layers(16, 16, (8 << 20) / scale);
  } else if (name == "W2") {
    for (int i = 0; i < 200; ++i) {
      const std::string group = "m" + std::to_string(i);
      ckpt::Value module = ckpt::Value::dict();
      for (int j = 0; j < 100; ++j)
        add(module, group, "p" + std::to_string(j), 1000);
      w.tree.set(group, module);
    }
  } else if (name == "W3") {
    ckpt::Value big = ckpt::Value::dict();
    for (int i = 0; i < 4; ++i)
      add(big, "big", "emb" + std::to_string(i), (16 << 20) / scale);
    w.tree.set("big", big);
    ckpt::Value small = ckpt::Value::dict();
    for (int i = 0; i < 5000; ++i)
      add(small, "small", "s" + std::to_string(i), 64 + (i % 7) * 100);
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

// The arrays of the partial loads: every 100th, at least one (1% of them).
std::vector<size_t> partial_subset(const Workload& w) {
  std::vector<size_t> subset;
  for (size_t i = 0; i < w.arrays.size(); i += 100) subset.push_back(i);
  return subset;
}

// The same tree with every array flagged immutable (shared, not copied).
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

// A load target of the workload's structure whose arrays are `buffers`
// (one per array leaf, in order, already written): the caller's memory,
// filled in place.
ckpt::Value into_buffers(const ckpt::Value& v,
                         std::vector<std::unique_ptr<Buffer>>& buffers,
                         size_t& next) {
  switch (v.kind()) {
    case ckpt::Value::Kind::kArray: {
      const ckpt::Array& a = v.as_array();
      buffers.push_back(std::make_unique<Buffer>(a.nbytes(), Memory::kMapped));
      return ckpt::Array::borrow(a.dtype(), a.shape(), buffers.back()->data());
    }
    case ckpt::Value::Kind::kDict: {
      ckpt::Value::Dict d;
      for (const auto& [k, child] : v.as_dict())
        d.emplace_back(k, into_buffers(child, buffers, next));
      return ckpt::Value::dict(std::move(d));
    }
    default:
      return v;
  }
}

// `from` copied to `to` as a checkpoint without integrity records, as an
// older ckpt wrote it: no _CHECKSUMS and no format version (the pytree's
// own per-array checksums stay). A load of it against a load of `from` is
// the cost of the core's checks.
void copy_without_checks(const fs::path& from, const fs::path& to) {
  fs::remove_all(to);
  fs::copy(from, to, fs::copy_options::recursive);
  fs::remove(to / ckpt::kChecksumsFile);
  std::ifstream in(to / ckpt::kCheckpointMetadataFile);
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(in);
  j.erase("ckpt_format_version");
  std::ofstream(to / ckpt::kCheckpointMetadataFile, std::ios::trunc)
      << j.dump();
}

void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

int open_file(const fs::path& file, int flags) {
  int fd = ::open(file.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) fail("open " + file.string());
  return fd;
}

// Runs `body(t)` on `threads` threads (t = 0 .. threads - 1).
template <class Body>
void on_threads(int threads, Body body) {
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(body, t);
  body(0);
  for (std::thread& t : pool) t.join();
}

// The byte offset of every array in the raw file: back to back, in order.
std::vector<uint64_t> raw_offsets(const Workload& w) {
  std::vector<uint64_t> offsets;
  uint64_t at = 0;
  for (const ckpt::Array& a : w.arrays) {
    offsets.push_back(at);
    at += a.nbytes();
  }
  return offsets;
}

void pwrite_all(int fd, const void* data, size_t n, uint64_t offset) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t k = ::pwrite(fd, p, n, static_cast<off_t>(offset));
    if (k <= 0) fail("write");
    p += k;
    offset += static_cast<uint64_t>(k);
    n -= static_cast<size_t>(k);
  }
}

void pread_all(int fd, void* data, size_t n, uint64_t offset) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    ssize_t k = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (k <= 0) fail("read");
    p += k;
    offset += static_cast<uint64_t>(k);
    n -= static_cast<size_t>(k);
  }
}

// Every array's bytes into one file, back to back; thread t writes arrays
// t, t + threads, ... at their offsets.
void raw_write(const Workload& w, const fs::path& file, bool sync,
               int threads) {
  int fd = open_file(file, O_WRONLY | O_CREAT | O_TRUNC);
  const std::vector<uint64_t> offsets = raw_offsets(w);
  on_threads(threads, [&](int t) {
    for (size_t i = t; i < w.arrays.size(); i += threads) {
      pwrite_all(fd, w.arrays[i].data(), w.arrays[i].nbytes(), offsets[i]);
    }
  });
  if (sync && ::fsync(fd) != 0) fail("fsync");
  ::close(fd);
}

// The arrays `which` of the raw file, each into a buffer of kind `memory`;
// thread t reads every threads-th of them. Buffers of kind kMapped are
// made (and written) before the clock starts.
void raw_read(const Workload& w, const fs::path& file,
              const std::vector<size_t>& which, Memory memory, int threads,
              StepMeter& meter) {
  const std::vector<uint64_t> offsets = raw_offsets(w);
  std::vector<std::unique_ptr<Buffer>> buffers(which.size());
  if (memory == Memory::kMapped) {
    for (size_t k = 0; k < which.size(); ++k) {
      buffers[k] =
          std::make_unique<Buffer>(w.arrays[which[k]].nbytes(), memory);
    }
  }
  meter.start();
  int fd = open_file(file, O_RDONLY);
  on_threads(threads, [&](int t) {
    for (size_t k = t; k < which.size(); k += threads) {
      const size_t n = w.arrays[which[k]].nbytes();
      if (!buffers[k]) buffers[k] = std::make_unique<Buffer>(n, memory);
      pread_all(fd, buffers[k]->data(), n, offsets[which[k]]);
    }
  });
  ::close(fd);
}

// One memcpy of every array into fresh memory of kind `memory`, as a
// snapshot makes it.
void one_memcpy(const Workload& w, Memory memory, int threads,
                std::vector<std::unique_ptr<Buffer>>& copies) {
  copies.resize(w.arrays.size());
  on_threads(threads, [&](int t) {
    for (size_t i = t; i < w.arrays.size(); i += threads) {
      copies[i] = std::make_unique<Buffer>(w.arrays[i].nbytes(), memory);
      std::memcpy(copies[i]->data(), w.arrays[i].data(), w.arrays[i].nbytes());
    }
  });
}

ckpt::ContextOptions context_options(bool fsync, bool partial = false,
                                     bool orbax = false) {
  ckpt::ContextOptions o;
  o.fsync = fsync;
  if (partial) o.handler_options = {{"pytree", {{"partial_load", true}}}};
  if (orbax) o.handler_options = {{"pytree", {{"storage", "orbax"}}}};
  return o;
}

// The load target of the arrays `subset` of `w` (array specs).
ckpt::Value subset_target(const Workload& w,
                          const std::vector<size_t>& subset) {
  ckpt::Value target = ckpt::Value::dict();
  for (size_t i : subset) {
    const std::vector<std::string>& path = w.paths[i];
    const ckpt::Value* group = target.find(path[0]);
    ckpt::Value g = group ? *group : ckpt::Value::dict();
    g.set(path[1], ckpt::ArraySpec{w.arrays[i].dtype(), w.arrays[i].shape()});
    target.set(path[0], g);
  }
  return target;
}

// Removes `path` and flushes dirty pages: a save starts from the same
// state whatever ran before it.
void settle(const fs::path& path) {
  fs::remove_all(path);
  ::sync();
}

// Runs `step` of workload `w` once and returns its result object.
nlohmann::json run_step(const std::string& step, const std::string& workload,
                        int scale, const fs::path& dir, Memory memory,
                        int threads, const std::string& load_path) {
  const fs::path base = dir / ("ckpt-" + workload);
  const fs::path unchecked = dir / ("ckpt-" + workload + "-unchecked");
  const fs::path raw_file = dir / ("raw-" + workload + ".bin");
  const fs::path orbax = dir / ("ckpt-" + workload + "-orbax");
  nlohmann::json out = {{"workload", workload}, {"step", step}};
  // The plugins are loaded (and their code paged in) before any step is
  // measured, as the peers import their modules first.
  (void)ckpt::global_registry();
  if (step == "prepare_unchecked") {
    copy_without_checks(base, unchecked);
    ::sync();
    return out;
  }
  // The outputs of a tool, removed once its loads are done: the page cache
  // then holds one tool's files at a time (W4's 8 GiB twice would not fit
  // beside a load's 8 GiB).
  if (step == "remove_ckpt" || step == "remove_raw") {
    if (step == "remove_ckpt") {
      fs::remove_all(base);
      fs::remove_all(unchecked);
      fs::remove_all(orbax);
    } else {
      fs::remove(raw_file);
    }
    ::sync();
    return out;
  }
  // Loads need no workload in memory (only its shapes, for some): its
  // arrays stay out of the measured process's memory where they can.
  const bool is_ckpt_load = step == "load" || step == "load_unchecked";
  StepMeter meter;
  if (is_ckpt_load) {
    ckpt::Context context(context_options(false));
    meter.start();
    ckpt::Value loaded = ckpt::load(!load_path.empty() ? fs::path(load_path)
                                    : step == "load"   ? base
                                                       : unchecked);
    meter.stop(out);
    return out;
  }
  const bool shapes_only = step == "raw_read" || step == "raw_read_partial" ||
                           step == "load_into" || step == "load_partial";
  Workload w = make_workload(workload, scale, shapes_only);
  out["bytes"] = w.bytes;
  out["arrays"] = w.arrays.size();
  const std::vector<size_t> subset = partial_subset(w);
  std::vector<size_t> all(w.arrays.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  if (step == "raw_read" || step == "raw_read_partial") {
    raw_read(w, raw_file, step == "raw_read" ? all : subset, memory, threads,
             meter);
  } else if (step == "load_into" || step == "load_partial") {
    std::vector<std::unique_ptr<Buffer>> buffers;
    size_t next = 0;
    const bool partial = step == "load_partial";
    ckpt::Value target = partial ? subset_target(w, subset)
                                 : into_buffers(w.tree, buffers, next);
    w = Workload();  // the source arrays are not needed any more
    ckpt::Context context(context_options(false, partial));
    meter.start();
    ckpt::Value loaded =
        ckpt::load_checkpointables(base, {{"state", target}}).at(0).second;
  } else if (step == "memcpy") {
    std::vector<std::unique_ptr<Buffer>> copies;
    meter.start();
    one_memcpy(w, memory, threads, copies);
  } else if (step == "raw_write" || step == "raw_write_fsync") {
    fs::remove(raw_file);
    ::sync();
    meter.start();
    raw_write(w, raw_file, step == "raw_write_fsync", threads);
  } else if (step == "save" || step == "save_fsync" ||
             step == "save_immutable" || step == "async" ||
             step == "save_orbax") {
    const ckpt::Value tree =
        step == "save_immutable" ? immutable_view(w.tree) : w.tree;
    const fs::path& target = step == "save_orbax" ? orbax : base;
    settle(target);
    ckpt::Context context(
        context_options(step == "save_fsync", false, step == "save_orbax"));
    meter.start();
    if (step == "async") {
      ckpt::AsyncSave pending = ckpt::save_async(base, tree);
      const double blocking = meter.stop(out);
      auto rest = Clock::now();
      pending.result();
      out["total_seconds"] =
          blocking + std::chrono::duration<double>(Clock::now() - rest).count();
      return out;
    }
    ckpt::save(target, tree);
  } else {
    throw std::invalid_argument("unknown step " + step);
  }
  meter.stop(out);
  return out;
}

// Round `r` of the integrity cost: a load of `checked` and one of
// `unchecked`, the first of them alternating between rounds.
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

// The cost of the integrity checks as a fraction of an unchecked load:
// the median of the differences of the loads timed side by side, over the
// median unchecked load (pairs share the machine's state of the moment).
double paired_cost(const std::vector<double>& checked,
                   const std::vector<double>& unchecked) {
  std::vector<double> differences;
  for (size_t i = 0; i < checked.size() && i < unchecked.size(); ++i) {
    differences.push_back(checked[i] - unchecked[i]);
  }
  return median(differences) / median(unchecked);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ckpt pytree benchmark (C++ half)"};
  std::string workload = "W1", dir = "/tmp/ckpt-bench", step, memory = "plain";
  int runs = 5, scale = 1, threads = 1;
  app.add_option("--workload", workload);
  app.add_option("--runs", runs);
  app.add_option("--scale", scale);
  app.add_option("--dir", dir);
  app.add_option("--step", step, "one timed step (see the file's comment)");
  app.add_option("--memory", memory,
                 "raw baselines: plain, populated, huge "
                 "or mapped");
  app.add_option("--threads", threads, "raw baselines: 1 or 2")
      ->check(CLI::Range(1, 64));
  std::string load_path;
  app.add_option("--path", load_path,
                 "--step load: the checkpoint to load instead of ckpt's "
                 "own (one another tool wrote, e.g. Orbax)");
  bool integrity_only = false;
  app.add_flag("--integrity", integrity_only,
               "only loads, with and without integrity records, in turn");
  std::string profile_step;
  app.add_option("--profile", profile_step,
                 "save or load: only that step, --runs times, untimed "
                 "set-up outside it (run under perf record)")
      ->check(CLI::IsMember({"save", "load"}));
  CLI11_PARSE(app, argc, argv);

  try {
    fs::create_directories(dir);
    if (!step.empty()) {
      std::cout << run_step(step, workload, scale, dir,
                            memory_from_name(memory), threads, load_path)
                       .dump()
                << std::endl;
      return 0;
    }
    fs::path base = fs::path(dir) / ("ckpt-" + workload);
    ckpt::SaveOptions overwrite;
    overwrite.overwrite = true;
    nlohmann::json out = {{"workload", workload}};
    Workload w = make_workload(workload, scale);
    ckpt::Context context(context_options(false));
    ckpt::save(base, w.tree, overwrite);
    std::vector<double> times;
    if (integrity_only) {
      // Saved once and settled: nothing but the loads is timed or running.
      const fs::path unchecked =
          fs::path(dir) / ("ckpt-" + workload + "-unchecked");
      copy_without_checks(base, unchecked);
      ::sync();
      std::vector<double> checked_t, unchecked_t;
      for (int r = 0; r < runs; ++r) {
        load_in_turn(base, unchecked, r, checked_t, unchecked_t);
      }
      fs::remove_all(unchecked);
      out["samples"] = {{"ckpt_load", checked_t},
                        {"ckpt_load_unchecked", unchecked_t}};
      out["ckpt_load"] = median(checked_t);
      out["ckpt_load_unchecked"] = median(unchecked_t);
      out["integrity_cost"] = paired_cost(checked_t, unchecked_t);
    } else if (!profile_step.empty()) {
      // What a profiler should see: the step alone, repeated; each round's
      // set-up (removing the previous output, sync) is outside the timed
      // part, which is printed per round.
      for (int r = 0; r < runs; ++r) {
        if (profile_step == "save") settle(base);
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
    } else {
      std::cerr << "ckpt_bench: give --step, --profile or --integrity\n";
      return 2;
    }
    fs::remove_all(base);
    std::cout << out.dump() << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "ckpt_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
