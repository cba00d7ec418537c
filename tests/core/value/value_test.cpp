// Values and arrays of the C++ API.
#include <ckpt/dlpack.h>
#include <ckpt/errors.h>
#include <ckpt/value.h>

#include <catch2/catch.hpp>
#include <limits>

using namespace ckpt;

TEST_CASE("arrays own, borrow or share memory", "[value]") {
  std::vector<float> data = {1, 2, 3, 4, 5, 6};
  Array borrowed = Array::borrow(DType::kFloat32, {2, 3}, data.data());
  CHECK(borrowed.data() == data.data());
  CHECK(borrowed.nbytes() == 24);
  Array copied = Array::copy(DType::kFloat32, {2, 3}, data.data());
  CHECK(copied.data() != data.data());
  CHECK(copied == borrowed);
  data[0] = 9;
  CHECK(copied != borrowed);
}

TEST_CASE("strided arrays copy out in C order", "[value]") {
  std::vector<int32_t> data = {0, 1, 2, 3, 4, 5};  // 2x3
  // The transpose, 3x2, as strides over the same memory.
  Array t = Array::borrow(DType::kInt32, {3, 2}, data.data(), {1, 3});
  CHECK_FALSE(t.is_contiguous());
  CHECK(t.to_vector<int32_t>() == std::vector<int32_t>{0, 3, 1, 4, 2, 5});
}

TEST_CASE("zero-size and 0-d arrays", "[value]") {
  Array empty = Array::zeros(DType::kFloat64, {0, 4});
  CHECK(empty.num_elements() == 0);
  CHECK(empty.nbytes() == 0);
  Array scalar = Array::from<double>({2.5}, {});
  CHECK(scalar.shape().empty());
  CHECK(scalar.num_elements() == 1);
  CHECK(scalar.to_vector<double>() == std::vector<double>{2.5});
}

TEST_CASE("dtype names follow NumPy", "[value]") {
  CHECK(dtype_name(DType::kBFloat16) == "bfloat16");
  CHECK(dtype_from_name("complex128") == DType::kComplex128);
  CHECK(dtype_size(DType::kComplex64) == 8);
  CHECK_THROWS_AS(dtype_from_name("float8"), InvalidArgumentError);
}

TEST_CASE("dicts keep insertion order and refuse duplicate keys", "[value]") {
  Value d = Value::dict({{"z", 1}, {"a", 2}});
  d.set("m", 3);
  d.set("z", 4);
  REQUIRE(d.size() == 3);
  CHECK(d.as_dict()[0].first == "z");
  CHECK(d.at("z").as_int() == 4);
  CHECK(d.find("nope") == nullptr);
  CHECK_THROWS_AS(d.at("nope"), NotFoundError);
  CHECK_THROWS_AS(Value::dict({{"k", 1}, {"k", 2}}), InvalidArgumentError);
}

TEST_CASE("accessors name the kind they found on a mismatch", "[value]") {
  Value v = Value::list({1, 2});
  try {
    v.as_dict();
    FAIL("expected InvalidArgumentError");
  } catch (const InvalidArgumentError& e) {
    CHECK(std::string(e.what()) == "expected dict, got list of 2");
  }
}

TEST_CASE("DLPack tensors come in and go out without a copy",
          "[value][dlpack]") {
  static int deleted = 0;
  deleted = 0;
  std::vector<int16_t> memory = {1, 2, 3, 4, 5, 6};
  int64_t shape[] = {2, 3};
  auto* managed = new DLManagedTensor{};
  managed->dl_tensor.data = memory.data();
  managed->dl_tensor.device = DLDevice{kDLCPU, 0};
  managed->dl_tensor.ndim = 2;
  managed->dl_tensor.dtype = DLDataType{kDLInt, 16, 1};
  managed->dl_tensor.shape = shape;
  managed->deleter = [](DLManagedTensor* self) {
    ++deleted;
    delete self;
  };
  {
    Array a = from_dlpack(managed);
    CHECK(a.data() == memory.data());
    CHECK(a.dtype() == DType::kInt16);
    CHECK(a.shape() == Shape{2, 3});
    DLManagedTensor* out = to_dlpack(a);
    CHECK(out->dl_tensor.data == memory.data());
    CHECK(out->dl_tensor.dtype.code == kDLInt);
    CHECK(out->dl_tensor.shape[1] == 3);
    out->deleter(out);
    CHECK(deleted == 0);  // `a` still shares the memory
  }
  CHECK(deleted == 1);
}

TEST_CASE("DLPack tensors on other devices are refused, and still freed",
          "[value][dlpack]") {
  static int deleted = 0;
  deleted = 0;
  int64_t shape[] = {1};
  auto* managed = new DLManagedTensor{};
  managed->dl_tensor.device = DLDevice{kDLCUDA, 0};
  managed->dl_tensor.ndim = 1;
  managed->dl_tensor.dtype = DLDataType{kDLFloat, 32, 1};
  managed->dl_tensor.shape = shape;
  managed->deleter = [](DLManagedTensor* self) {
    ++deleted;
    delete self;
  };
  CHECK_THROWS_AS(from_dlpack(managed), InvalidArgumentError);
  CHECK(deleted == 1);
}

TEST_CASE("unsigned integers become int64 values when they fit", "[value]") {
  size_t n = 42;
  CHECK(Value(n).as_int() == 42);
  CHECK(Value(7u).as_int() == 7);
  CHECK_THROWS_AS(Value(std::numeric_limits<uint64_t>::max()),
                  InvalidArgumentError);
}
