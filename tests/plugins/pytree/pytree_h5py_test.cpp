// h5py alone (without ckpt) reads every array of a ckpt pytree checkpoint,
// packed or not, with its dtype, shape and exact bytes.
#include <catch2/catch.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "plugins/pytree/pytree_test_util.h"
#include "test_util.h"

using namespace ckpt;
using namespace ckpt::test;

namespace {

std::string hex_of(const Array& a) {
  Array c = a.contiguous_copy();
  static const char* digits = "0123456789abcdef";
  std::string out;
  const auto* p = static_cast<const unsigned char*>(c.data());
  for (size_t i = 0; i < c.nbytes(); ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}

// NumPy's dtype name for what h5py returns; bfloat16 arrives as its bits.
std::string numpy_name(DType d) {
  return d == DType::kBFloat16 ? "uint16" : std::string(dtype_name(d));
}

}  // namespace

TEST_CASE(
    "h5py reads every array of a checkpoint, packed and not, compressed "
    "or not, with its dtype, shape and values",
    "[pytree][h5py]") {
  const DType dtypes[] = {
      DType::kBool,    DType::kInt8,      DType::kInt16,      DType::kInt32,
      DType::kInt64,   DType::kUInt8,     DType::kUInt16,     DType::kUInt32,
      DType::kUInt64,  DType::kFloat16,   DType::kBFloat16,   DType::kFloat32,
      DType::kFloat64, DType::kComplex64, DType::kComplex128,
  };
  Value tree = Value::dict();
  std::map<std::string, Array> expected;
  int seed = 0;
  for (DType d : dtypes) {
    std::string name(dtype_name(d));
    Array small = sample_array(d, ++seed, {2, 3});
    Array large = sample_array(d, ++seed, {64, 40});
    tree.set(name, Value::dict({{"small", small}, {"large/x", large}}));
    expected[name + "/small"] = small;
    expected[name + "/large%2Fx"] = large;
  }
  Array scalar = Array::from<double>({2.5}, {});
  tree.set("zero d", scalar);
  expected["zero d"] = scalar;
  Array empty = Array::zeros(DType::kInt32, {0, 4});
  tree.set("empty", empty);
  expected["empty"] = empty;

  for (nlohmann::json options : {nlohmann::json{{"pack_threshold_bytes", 1024}},
                                 nlohmann::json{{"pack_threshold_bytes", 1024},
                                                {"compression", "gzip"}}}) {
    INFO(options.dump());
    TempDir dir;
    save_tree(dir / "state", tree, options);
    CHECK(load_tree(dir / "state") == tree);
    CommandResult r = run_command("/usr/bin/python3 " CKPT_SOURCE_ROOT
                                  "/tests/pytree_h5py_read.py " +
                                  (dir / "state" / "arrays.h5").string());
    REQUIRE(r.status == 0);
    std::istringstream lines(r.output);
    std::string line;
    size_t seen = 0;
    while (std::getline(lines, line)) {
      auto row = nlohmann::json::parse(line);
      std::string key = row.at("key");
      INFO(key);
      REQUIRE(expected.count(key) == 1);
      const Array& a = expected.at(key);
      CHECK(row.at("dtype") == numpy_name(a.dtype()));
      CHECK(row.at("ckpt_dtype") == dtype_name(a.dtype()));
      CHECK(row.at("shape").get<Shape>() == a.shape());
      CHECK(row.at("hex") == hex_of(a));
      ++seen;
    }
    CHECK(seen == expected.size());
  }
}
