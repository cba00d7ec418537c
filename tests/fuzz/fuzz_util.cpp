#include "fuzz_util.h"

#include <ckpt/checkpoint.h>
#include <ckpt/context.h>
#include <ckpt/layout.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <complex>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace ckpt_fuzz {

namespace {

std::vector<fs::path>& scratch_dirs() {
  static std::vector<fs::path> dirs;
  return dirs;
}

void remove_scratch_dirs() {
  std::error_code ec;
  for (const fs::path& dir : scratch_dirs()) fs::remove_all(dir, ec);
}

struct Counts {
  std::mutex mutex;
  uint64_t successes = 0;
  uint64_t refused = 0;
  std::map<std::string, uint64_t> errors;
};

Counts& counts() {
  static Counts* c = new Counts;  // never destroyed: used at exit
  return *c;
}

void print_counts() {
  Counts& c = counts();
  std::lock_guard<std::mutex> lock(c.mutex);
  if (c.successes == 0 && c.refused == 0 && c.errors.empty()) return;
  std::string line =
      "ckpt fuzz outcomes: " + std::to_string(c.successes) + " loaded";
  if (c.refused != 0) {
    line += ", " + std::to_string(c.refused) + " refused by the parser";
  }
  for (const auto& [kind, n] : c.errors) {
    line += ", " + std::to_string(n) + " " + kind;
  }
  std::fprintf(stderr, "%s\n", line.c_str());
}

}  // namespace

fs::path scratch_dir(const std::string& tag) {
  fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm")
                                               : fs::temp_directory_path();
  // Those of processes that died without cleaning up (a crash, a signal).
  const std::string prefix = "ckpt-fuzz-" + tag + "-";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(base, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string pid = name.substr(prefix.size());
    if (pid.empty() || pid.size() > 9 ||
        pid.find_first_not_of("0123456789") != pid.npos) {
      continue;
    }
    if (::kill(std::stoi(pid), 0) != 0 && errno == ESRCH) {
      fs::remove_all(entry.path(), ec);
    }
  }
  fs::path dir = base / ("ckpt-fuzz-" + tag + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  if (scratch_dirs().empty()) std::atexit(remove_scratch_dirs);
  scratch_dirs().push_back(dir);
  return dir;
}

void write_file(const fs::path& file, const void* data, size_t size) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw std::runtime_error("cannot write " + file.string() + ": " +
                             std::strerror(errno));
  }
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      throw std::runtime_error("cannot write " + file.string() + ": " +
                               std::strerror(errno));
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  ::close(fd);
}

std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// ------------------------------------------------------------ the samples

namespace {

uint16_t float_to_half(float f) {
  // Exact for the small values used here (normal halves).
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  uint32_t sign = (bits >> 16) & 0x8000;
  int32_t exponent = static_cast<int32_t>((bits >> 23) & 0xff) - 127 + 15;
  uint32_t mantissa = (bits >> 13) & 0x3ff;
  if (f == 0) return static_cast<uint16_t>(sign);
  return static_cast<uint16_t>(sign | (static_cast<uint32_t>(exponent) << 10) |
                               mantissa);
}

uint16_t float_to_bfloat16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return static_cast<uint16_t>(bits >> 16);
}

template <class T>
std::vector<T> ramp(size_t n, double start, double step) {
  std::vector<T> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<T>(start + step * i);
  return out;
}

ckpt::Array raw16(ckpt::DType dtype, ckpt::Shape shape,
                  const std::vector<float>& values, bool bfloat) {
  std::vector<uint16_t> bits;
  for (float v : values) {
    bits.push_back(bfloat ? float_to_bfloat16(v) : float_to_half(v));
  }
  return ckpt::Array::copy(dtype, std::move(shape), bits.data());
}

}  // namespace

ckpt::Value sample_tree() {
  using ckpt::Array;
  using ckpt::DType;
  using ckpt::Value;
  std::vector<float> halves = {0.5f, -1.0f, 2.0f,   0.25f,
                               1.5f, 3.0f,  -0.75f, 8.0f};
  std::vector<int32_t> high_rank = {7, -7};
  const uint8_t flag_bytes[] = {1, 0, 1, 1};
  Array flags = Array::copy(DType::kBool, {4}, flag_bytes);
  return Value::dict({
      {"params",
       Value::dict({
           {"dense", Value::dict({
                         // 256 bytes: its own dataset (threshold 64).
                         {"kernel",
                          Array::from(ramp<float>(64, -1.0, 1.0 / 32), {8, 8})},
                         // Packed.
                         {"bias", Array::from(ramp<float>(8, 0.0, 0.125))},
                     })},
           {"embed", raw16(DType::kBFloat16, {2, 4}, halves, true)},
           {"norm", raw16(DType::kFloat16, {8}, halves, false)},
       })},
      {"layers", Value::list({
                     Value::dict({
                         {"w", Array::from(ramp<double>(9, 1.0, 0.5), {3, 3})},
                         {"b", Array::from(ramp<double>(3, -1.0, 1.0))},
                     }),
                     Value::dict({
                         {"w", Array::from(ramp<int8_t>(4, -2, 1), {2, 2})},
                         {"mask", Array::from<uint8_t>({1, 0, 1})},
                     }),
                 })},
      {"counts", Array::from<int64_t>({std::numeric_limits<int64_t>::min(), 0,
                                       std::numeric_limits<int64_t>::max()})},
      {"u16", Array::from<uint16_t>({0, 1, 65535})},
      {"u32", Array::from<uint32_t>({4000000000u})},
      {"u64", Array::from<uint64_t>({1, std::numeric_limits<uint64_t>::max()})},
      {"i16", Array::from<int16_t>({-32768, 32767})},
      {"flags", flags},
      {"z64", Array::from<std::complex<float>>({{1.0f, -1.0f}, {0.5f, 2.0f}})},
      {"z128", Array::from<std::complex<double>>({{1e300, -1e-300}})},
      {"zero_d", Array::from<int32_t>({42}, {})},
      {"zero_size", Array::zeros(DType::kFloat32, {0, 3})},
      {"high_rank", Array::from(high_rank, {1, 1, 1, 1, 1, 1, 1, 1, 2})},
      {"step", 100},
      {"lr", 0.01},
      {"nan", std::nan("")},
      {"neg_inf", -std::numeric_limits<double>::infinity()},
      {"done", true},
      {"name", "run-7 Größe \"quoted\" \\ tab\t"},
      {"nothing", Value()},
      {"empty_dict", Value::dict()},
      {"empty_list", Value::list()},
      {"keys", Value::dict({
                   {"a/b", 1},
                   {"..", 2},
                   {"", 3},
                   {"_ckpt_x", Array::from<float>({1.0f, 2.0f})},
                   {"%25", "percent"},
                   {"größe 🚀", Value::list({Value::list({Value::list({4})})})},
               })},
  });
}

ckpt::Value small_tree() {
  using ckpt::Array;
  using ckpt::Value;
  return Value::list({
      Array::from<float>({1.0f, 2.0f, 3.0f}),
      Value::dict({{"x", 1}, {"y", "why"}}),
      Array::from(ramp<int32_t>(32, 0, 1), {4, 8}),
  });
}

nlohmann::json sample_json() {
  return {
      {"name", "Größe — 大きさ — 🚀"},
      {"nested",
       {{"a", {1, 2, {{"b", nullptr}}}}, {"empty", nlohmann::json::object()}}},
      {"big", std::numeric_limits<int64_t>::max()},
      {"small", std::numeric_limits<int64_t>::min()},
      {"unsigned", std::numeric_limits<uint64_t>::max()},
      {"pi", 3.141592653589793},
      {"tiny", 5e-324},
      {"list", {true, false, "x", 1.5, nlohmann::json::array()}},
  };
}

void save_sample(const fs::path& path, const ckpt::Checkpointables& items) {
  ckpt::ContextOptions options;
  options.fsync = false;
  options.handler_options = {{"pytree", {{"pack_threshold_bytes", 64}}}};
  ckpt::Context context(options);
  ckpt::SaveOptions save_options;
  save_options.overwrite = true;
  ckpt::save_checkpointables(path, items, save_options);
}

// ---------------------------------------------------------------- sealing

namespace {

std::map<std::string, ckpt::internal::SelfCheckedFiles> self_checked_of(
    const fs::path& checkpoint) {
  std::map<std::string, ckpt::internal::SelfCheckedFiles> self_checked;
  for (const auto& entry : fs::directory_iterator(checkpoint)) {
    if (entry.is_directory() && fs::exists(entry.path() / "arrays.h5")) {
      self_checked[entry.path().filename().string()] = {{"arrays.h5"},
                                                        {"arrays.process_"}};
    }
  }
  return self_checked;
}

}  // namespace

Sealer::Sealer(const fs::path& checkpoint) : checkpoint_(checkpoint) {
  fs::remove(checkpoint / ckpt::kChecksumsFile);
  record_ =
      ckpt::internal::record_checksums(checkpoint, self_checked_of(checkpoint));
}

void Sealer::reseal(const std::string& relative, const void* data,
                    size_t size) {
  bool found = false;
  for (ckpt::internal::FileRecord& r : record_.records) {
    if (r.path != relative) continue;
    r.size = size;
    if (r.type == ckpt::internal::FileRecord::Type::kFile) {
      r.xxh3 = ckpt::internal::xxh3_of(data, size);
    }
    found = true;
  }
  if (!found) {
    throw std::logic_error("no record of " + relative + " in " +
                           checkpoint_.string());
  }
  write_file(checkpoint_ / ckpt::kChecksumsFile,
             ckpt::internal::checksums_text(record_));
}

void reseal_checksums(const fs::path& checkpoint) {
  const fs::path file = checkpoint / ckpt::kChecksumsFile;
  fs::remove(file);
  write_file(file,
             ckpt::internal::checksums_text(ckpt::internal::record_checksums(
                 checkpoint, self_checked_of(checkpoint))));
}

// --------------------------------------------------------------- outcomes

namespace {

// Registers print_counts at the first outcome; call with c.mutex held.
void first_outcome(Counts& c) {
  if (c.successes == 0 && c.refused == 0 && c.errors.empty()) {
    std::atexit(print_counts);
  }
}

}  // namespace

void count_error(const ckpt::Error& error) {
  static const bool verbose = std::getenv("CKPT_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "ckpt fuzz: %s\n", error.what());
  Counts& c = counts();
  std::lock_guard<std::mutex> lock(c.mutex);
  first_outcome(c);
  ++c.errors[ckpt::error_kind_name(error.kind())];
}

void count_success() {
  Counts& c = counts();
  std::lock_guard<std::mutex> lock(c.mutex);
  first_outcome(c);
  ++c.successes;
}

void count_refused() {
  Counts& c = counts();
  std::lock_guard<std::mutex> lock(c.mutex);
  first_outcome(c);
  ++c.refused;
}

}  // namespace ckpt_fuzz
