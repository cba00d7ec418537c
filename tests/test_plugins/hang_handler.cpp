// A handler type whose background tier does not end until the test lets it,
// for the tests of saves and exits that must not hang (tests/hang_test.cpp,
// tests/os_error_child.cpp):
//
//   test.HangHandler  configuration {"release_file": PATH}
//
// It takes any dict. Its save's background tier waits until PATH exists
// (polled every few milliseconds, so that a process may exit while it
// waits: no thread blocks on a condition variable that static destruction
// would destroy), then reads every byte of every array of the value it
// retained (the host's memory must still be there: a sanitizer sees it
// when not) and writes their sum into hang.txt. Without a release_file the
// background tier ends at once. Loading returns {"sum": <int>}. The plugin
// registers nothing by default: tests bind the handler to a name.
#include <ckpt/sdk/plugin.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace {

using ckpt::sdk::Error;
using ckpt::sdk::OutValue;

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

int64_t elements_of(const DLTensor& t) {
  int64_t n = 1;
  for (int i = 0; i < t.ndim; ++i) n *= t.shape[i];
  return n;
}

// The sum of the bytes of every array in `value` (C-contiguous arrays in
// full, strided ones by their first element only: enough to touch the
// memory).
uint64_t byte_sum(const ckpt_value& value) {
  uint64_t sum = 0;
  std::vector<const ckpt_value*> pending = {&value};
  while (!pending.empty()) {
    const ckpt_value* v = pending.back();
    pending.pop_back();
    if (v->kind == CKPT_VALUE_DICT || v->kind == CKPT_VALUE_LIST) {
      for (size_t i = 0; i < v->count; ++i) pending.push_back(&v->children[i]);
    } else if (v->kind == CKPT_VALUE_ARRAY && v->array) {
      const DLTensor& t = v->array->tensor;
      const auto* bytes = static_cast<const unsigned char*>(t.data) +
                          static_cast<size_t>(t.byte_offset);
      const int64_t n = elements_of(t);
      if (n == 0) continue;
      const size_t item = (t.dtype.bits * t.dtype.lanes + 7) / 8;
      const size_t count = t.strides ? item : item * static_cast<size_t>(n);
      for (size_t i = 0; i < count; ++i) sum += bytes[i];
    }
  }
  return sum;
}

class HangHandler final : public ckpt::sdk::Handler {
 public:
  explicit HangHandler(const std::string& config_json) {
    auto config = nlohmann::json::parse(config_json);
    release_file_ = config.value("release_file", std::string());
  }

  bool is_handleable(const ckpt_value& value) override {
    return value.kind == CKPT_VALUE_DICT;
  }
  ckpt_answer is_abstract_handleable(const ckpt_value&) override {
    return CKPT_ANSWER_NO;
  }

  ckpt::sdk::SaveWork save(const ckpt::sdk::Call& call, const ckpt_value& value,
                           ckpt::sdk::RetainedValue retained) override {
    // The retained value keeps `value` (and the memory of its owned or
    // shared arrays) alive until the work is destroyed.
    auto keep = std::make_shared<ckpt::sdk::RetainedValue>(std::move(retained));
    const ckpt_value* v = &value;
    std::string file = call.directory + "/hang.txt";
    std::string release = release_file_;
    return [keep, v, file, release] {
      while (!release.empty() && !exists(release)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      const uint64_t sum = byte_sum(*v);
      std::ofstream out(file);
      out << sum;
      if (!out) throw Error(CKPT_ERROR_IO, "cannot write " + file);
    };
  }

  ckpt::sdk::LoadWork load(const ckpt::sdk::Call& call, const ckpt_value*,
                           ckpt::sdk::RetainedValue) override {
    std::string file = call.directory + "/hang.txt";
    return [file] {
      std::ifstream in(file);
      int64_t sum = 0;
      if (!(in >> sum)) throw Error(CKPT_ERROR_NOT_FOUND, "no " + file);
      OutValue out = OutValue::dict();
      out.add("sum", OutValue::integer(sum));
      return out;
    };
  }

 private:
  std::string release_file_;
};

}  // namespace

CKPT_PLUGIN("hang", registrar) {
  registrar.handler_type<HangHandler>("test.HangHandler");
}
