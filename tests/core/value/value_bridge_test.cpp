// The bridge between ckpt::Value and the C ABI's ckpt_value: C views of
// values, conversion back, dtype codes and shared views.
#include "value/value_bridge.h"

#include <ckpt/abi.h>
#include <ckpt/errors.h>
#include <ckpt/sdk/dtype.h>
#include <ckpt/value.h>

#include <catch2/catch.hpp>
#include <complex>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

using namespace ckpt;
using ckpt::internal::CValueView;
using ckpt::internal::from_c_dtype;
using ckpt::internal::from_c_value;
using ckpt::internal::SharedCValueView;
using ckpt::internal::to_c_dtype;
using ckpt::test::all_dtypes;
using ckpt::test::message_of;

namespace {

const std::vector<DType> kAllDTypes = all_dtypes();

std::string text_of(const ckpt_value& v) {
  return std::string(v.string_value, v.string_len);
}

// Checks every struct_size under `v` against abi.h's constants; returns the
// number of C structs visited.
int check_struct_sizes(const ckpt_value& v) {
  CHECK(v.struct_size == CKPT_VALUE_STRUCT_SIZE);
  int visited = 1;
  if (v.array) {
    CHECK(v.array->struct_size == CKPT_ARRAY_STRUCT_SIZE);
    ++visited;
  }
  if (v.proto) {
    CHECK(v.proto->struct_size == CKPT_PROTO_STRUCT_SIZE);
    ++visited;
  }
  if (v.object) {
    CHECK(v.object->struct_size == CKPT_OBJECT_STRUCT_SIZE);
    ++visited;
  }
  for (size_t i = 0; i < v.count; ++i) {
    visited += check_struct_sizes(v.children[i]);
  }
  return visited;
}

ProtoMessage sample_proto() {
  ProtoMessage m;
  m.full_name = "my.pkg.Config";
  m.bytes = std::string("\x08\x01\x12\x00", 4);
  m.descriptor_set = "descriptor set bytes";
  return m;
}

// One value of every kind the bridge converts back (all but stateful).
std::vector<Value> values_of_every_kind(const std::shared_ptr<int>& object) {
  return {
      Value(),
      Value(true),
      Value(false),
      Value(-7),
      Value(2.5),
      Value("text"),
      Value(std::string("with\0nul", 8)),
      Value(Array::from<float>({1, 2, 3, 4, 5, 6}, {2, 3})),
      Value::dict({{"z", 1}, {"a", Value::list({2, "x"})}}),
      Value::dict(),
      Value::list(),
      Value::json({{"k", {1, 2}}, {"s", "v"}}),
      Value::proto(sample_proto()),
      Value::proto_type(ProtoMessage{"my.pkg.Config", "", ""}),
      Value::object("test.Object", object),
      Value(ArraySpec{DType::kInt16, {4, 5}}),
      Value(ArraySpec{std::nullopt, {3}}),
      Value::scalar_spec(Value::Kind::kBool),
      Value::scalar_spec(Value::Kind::kInt),
      Value::scalar_spec(Value::Kind::kDouble),
      Value::scalar_spec(Value::Kind::kString),
      Value::placeholder(),
      Value::json_type(),
  };
}

// from_c_value of `v` with a keepalive that owns nothing.
Value convert(const ckpt_value& v) {
  return from_c_value(v, std::make_shared<int>(0));
}

}  // namespace

TEST_CASE("a C view of a tree keeps dict key order and every scalar leaf",
          "[bridge]") {
  Value tree = Value::dict({
      {"zeta", Value::list({Value(), true, 7, 2.5, "text"})},
      {"alpha", false},
      {"mid", Value::dict()},
  });
  CValueView view(tree);
  const ckpt_value& root = *view.get();
  REQUIRE(root.kind == CKPT_VALUE_DICT);
  REQUIRE(root.count == 3);
  CHECK(std::string(root.keys[0]) == "zeta");
  CHECK(std::string(root.keys[1]) == "alpha");
  CHECK(std::string(root.keys[2]) == "mid");

  const ckpt_value& list = root.children[0];
  REQUIRE(list.kind == CKPT_VALUE_LIST);
  REQUIRE(list.count == 5);
  CHECK(list.keys == nullptr);
  CHECK(list.children[0].kind == CKPT_VALUE_NONE);
  CHECK(list.children[1].kind == CKPT_VALUE_BOOL);
  CHECK(list.children[1].int_value == 1);
  CHECK(list.children[2].kind == CKPT_VALUE_INT);
  CHECK(list.children[2].int_value == 7);
  CHECK(list.children[3].kind == CKPT_VALUE_DOUBLE);
  CHECK(list.children[3].double_value == 2.5);
  CHECK(list.children[4].kind == CKPT_VALUE_STRING);
  CHECK(text_of(list.children[4]) == "text");

  CHECK(root.children[1].kind == CKPT_VALUE_BOOL);
  CHECK(root.children[1].int_value == 0);
  CHECK(root.children[2].kind == CKPT_VALUE_DICT);
  CHECK(root.children[2].count == 0);
  CHECK(check_struct_sizes(root) == 9);
  CHECK(view.required_minor() == 0);
}

TEST_CASE(
    "a C view holds its own copy of what it shows, and the memory of its "
    "arrays",
    "[bridge]") {
  auto tree = std::make_unique<Value>(
      Value::dict({{"a", "before"},
                   {"key that is longer than a short string's buffer",
                    Array::from<int32_t>({1, 2, 3}, {3, 1})}}));
  CValueView view(*tree);
  tree->set("a", 5);
  tree->set("b", 6);
  tree.reset();  // the Value is gone; the view is not
  REQUIRE(view.get()->count == 2);
  CHECK(view.get()->children[0].kind == CKPT_VALUE_STRING);
  CHECK(text_of(view.get()->children[0]) == "before");
  CHECK(std::string(view.get()->keys[1]) ==
        "key that is longer than a short string's buffer");
  const ckpt_array& a = *view.get()->children[1].array;
  CHECK(a.tensor.ndim == 2);
  CHECK(a.tensor.shape[0] == 3);
  CHECK(a.tensor.shape[1] == 1);
  CHECK(static_cast<const int32_t*>(a.tensor.data)[2] == 3);
  CHECK(a.flags == 0u);
  // A save whose caller waits shows every array immutable.
  Value mutable_tree = Value::dict({{"w", Array::from<float>({1, 2})}});
  CHECK(CValueView(mutable_tree, /*all_immutable=*/true)
            .get()
            ->children[0]
            .array->flags == CKPT_ARRAY_IMMUTABLE);
}

TEST_CASE("a C view of an array shares its memory and describes it",
          "[bridge]") {
  auto data = std::make_shared<std::vector<int32_t>>(
      std::vector<int32_t>{0, 1, 2, 3, 4, 5});
  Value value(Array::share(DType::kInt32, {2, 3}, data->data(), data,
                           /*immutable=*/true));
  CValueView view(value);
  const ckpt_value& v = *view.get();
  REQUIRE(v.kind == CKPT_VALUE_ARRAY);
  REQUIRE(v.array != nullptr);
  const ckpt_array& a = *v.array;
  CHECK(a.struct_size == CKPT_ARRAY_STRUCT_SIZE);
  CHECK(a.dtype == CKPT_DTYPE_INT32);
  CHECK(a.flags == CKPT_ARRAY_IMMUTABLE);
  CHECK(a.tensor.data == data->data());
  CHECK(a.tensor.byte_offset == 0);
  CHECK(a.tensor.device.device_type == kDLCPU);
  CHECK(a.tensor.dtype.code == kDLInt);
  CHECK(a.tensor.dtype.bits == 32);
  CHECK(a.tensor.dtype.lanes == 1);
  REQUIRE(a.tensor.ndim == 2);
  CHECK(a.tensor.shape[0] == 2);
  CHECK(a.tensor.shape[1] == 3);
  CHECK(a.tensor.strides == nullptr);
  CHECK(view.required_minor() == 0);
}

TEST_CASE("a C view of a strided mutable array has strides and no flags",
          "[bridge]") {
  std::vector<uint8_t> data = {1, 0, 1, 1, 0, 0};
  Value value(Array::borrow(DType::kBool, {3, 2}, data.data(), {1, 3}));
  CValueView view(value);
  const ckpt_array& a = *view.get()->array;
  CHECK(a.dtype == CKPT_DTYPE_BOOL);
  CHECK(a.flags == 0u);
  // dlpack 0.6 has no bool: 8-bit unsigned.
  CHECK(a.tensor.dtype.code == kDLUInt);
  CHECK(a.tensor.dtype.bits == 8);
  REQUIRE(a.tensor.strides != nullptr);
  CHECK(a.tensor.strides[0] == 1);
  CHECK(a.tensor.strides[1] == 3);
  CHECK(a.tensor.data == data.data());
}

TEST_CASE("a C view of JSON is its text", "[bridge]") {
  const nlohmann::json doc = {{"b", {1, 2}}, {"a", "x"}};
  CValueView view(Value::json(doc));
  const ckpt_value& v = *view.get();
  CHECK(v.kind == CKPT_VALUE_JSON);
  CHECK(nlohmann::json::parse(text_of(v)) == doc);
  CHECK(view.get()->array == nullptr);
}

TEST_CASE(
    "a C view of a protobuf message has its name, bytes and "
    "descriptors",
    "[bridge]") {
  const ProtoMessage m = sample_proto();
  CValueView view(Value::proto(m));
  const ckpt_value& v = *view.get();
  CHECK(v.kind == CKPT_VALUE_PROTO);
  REQUIRE(v.proto != nullptr);
  CHECK(v.proto->struct_size == CKPT_PROTO_STRUCT_SIZE);
  CHECK(std::string(v.proto->full_name) == "my.pkg.Config");
  CHECK(std::string(reinterpret_cast<const char*>(v.proto->bytes),
                    v.proto->bytes_len) == m.bytes);
  CHECK(std::string(reinterpret_cast<const char*>(v.proto->descriptor_set),
                    v.proto->descriptor_set_len) == m.descriptor_set);

  CValueView type_view(Value::proto_type(ProtoMessage{"my.pkg.Other", "", ""}));
  CHECK(type_view.get()->kind == CKPT_VALUE_PROTO_TYPE);
  CHECK(std::string(type_view.get()->proto->full_name) == "my.pkg.Other");
  CHECK(type_view.get()->proto->bytes_len == 0);
}

TEST_CASE("a C view of a user object has its typestr and pointer", "[bridge]") {
  auto object = std::make_shared<int>(42);
  CValueView view(Value::object("test.Counter", object));
  const ckpt_value& v = *view.get();
  CHECK(v.kind == CKPT_VALUE_OBJECT);
  REQUIRE(v.object != nullptr);
  CHECK(v.object->struct_size == CKPT_OBJECT_STRUCT_SIZE);
  CHECK(std::string(v.object->typestr) == "test.Counter");
  CHECK(v.object->pointer == object.get());
}

TEST_CASE("a C view of an array spec has dtype and shape but no data",
          "[bridge]") {
  CValueView view(Value(ArraySpec{DType::kFloat64, {4, 5, 6}}));
  const ckpt_value& v = *view.get();
  CHECK(v.kind == CKPT_VALUE_ARRAY_SPEC);
  REQUIRE(v.array != nullptr);
  CHECK(v.array->struct_size == CKPT_ARRAY_STRUCT_SIZE);
  CHECK(v.array->dtype == CKPT_DTYPE_FLOAT64);
  CHECK(v.array->tensor.data == nullptr);
  CHECK(v.array->tensor.dtype.code == kDLFloat);
  CHECK(v.array->tensor.dtype.bits == 64);
  REQUIRE(v.array->tensor.ndim == 3);
  CHECK(v.array->tensor.shape[2] == 6);
  CHECK(view.required_minor() == 0);
}

TEST_CASE("an array spec of unknown dtype needs ABI minor 1", "[bridge]") {
  CValueView view(Value(ArraySpec{std::nullopt, {3}}));
  CHECK(view.get()->kind == CKPT_VALUE_ARRAY_SPEC);
  CHECK(view.get()->array->dtype == CKPT_DTYPE_UNKNOWN);
  CHECK(view.get()->array->tensor.ndim == 1);
  CHECK(view.required_minor() == 1);

  // Also deep inside a tree, after leaves that need nothing.
  CValueView nested(Value::dict(
      {{"a", 1},
       {"b", Value::list({Value(ArraySpec{std::nullopt, {}}), 2.0})},
       {"c", ArraySpec{DType::kInt8, {1}}}}));
  CHECK(nested.required_minor() == 1);
}

TEST_CASE("every value without an unknown-dtype spec needs ABI minor 0",
          "[bridge]") {
  const auto object = std::make_shared<int>(1);
  for (const Value& value : values_of_every_kind(object)) {
    const bool unknown_dtype = value.kind() == Value::Kind::kArraySpec &&
                               !value.as_array_spec().dtype.has_value();
    if (unknown_dtype) continue;
    INFO(describe(value));
    CValueView view(value);
    CHECK(view.required_minor() == 0);
  }
}

TEST_CASE("a C view of abstract leaves names their kinds", "[bridge]") {
  CValueView scalar(Value::scalar_spec(Value::Kind::kDouble));
  CHECK(scalar.get()->kind == CKPT_VALUE_SCALAR_SPEC);
  CHECK(scalar.get()->int_value == CKPT_VALUE_DOUBLE);
  CValueView string_spec(Value::scalar_spec(Value::Kind::kString));
  CHECK(string_spec.get()->int_value == CKPT_VALUE_STRING);
  CValueView placeholder(Value::placeholder());
  CHECK(placeholder.get()->kind == CKPT_VALUE_PLACEHOLDER);
  CValueView json_type(Value::json_type());
  CHECK(json_type.get()->kind == CKPT_VALUE_JSON_TYPE);
}

TEST_CASE("every C struct of a view has the size of abi.h's constants",
          "[bridge]") {
  const auto object = std::make_shared<int>(1);
  const std::vector<Value> all = values_of_every_kind(object);
  CValueView view(Value::list(Value::List(all.begin(), all.end())));
  // The list, its 23 children, the 4 values under its first dict, and 3
  // array, 2 proto and 1 object structs.
  CHECK(check_struct_sizes(*view.get()) == 1 + 23 + 4 + 3 + 2 + 1);
}

TEST_CASE("values of every kind round-trip through their C view", "[bridge]") {
  const auto object = std::make_shared<int>(1);
  for (const Value& value : values_of_every_kind(object)) {
    INFO(describe(value));
    CValueView view(value);
    const Value back = convert(*view.get());
    CHECK(back.kind() == value.kind());
    CHECK(back == value);
  }
}

TEST_CASE("a whole tree round-trips through its C view", "[bridge]") {
  const auto object = std::make_shared<int>(1);
  const std::vector<Value> all = values_of_every_kind(object);
  const Value tree =
      Value::dict({{"all", Value::list(Value::List(all.begin(), all.end()))},
                   {"b", Value::dict({{"y", 1}, {"x", 2}})}});
  CValueView view(tree);
  const Value back = convert(*view.get());
  CHECK(back == tree);
  REQUIRE(back.at("b").kind() == Value::Kind::kDict);
  CHECK(back.at("b").as_dict()[0].first == "y");
}

TEST_CASE("arrays converted back share the C memory and its keepalive",
          "[bridge]") {
  std::vector<double> data = {1, 2, 3, 4, 5, 6};
  const Value value(
      Array::borrow(DType::kFloat64, {3, 2}, data.data(), {1, 3}));
  CValueView view(value);
  auto keepalive = std::make_shared<int>(0);
  const Value back = from_c_value(*view.get(), keepalive);
  const Array& a = back.as_array();
  CHECK(a.data() == data.data());
  CHECK(a.owner().get() == keepalive.get());
  CHECK(a.strides() == std::vector<int64_t>{1, 3});
  CHECK(a.shape() == Shape{3, 2});
  CHECK(a.to_vector<double>() == std::vector<double>{1, 4, 2, 5, 3, 6});
  data[0] = 9;  // shared, not copied
  CHECK(a.to_vector<double>()[0] == 9);
}

TEST_CASE("arrays converted back honour the byte offset", "[bridge]") {
  std::vector<int64_t> data = {10, 20, 30};
  int64_t shape[] = {2};
  ckpt_array array{};
  array.struct_size = CKPT_ARRAY_STRUCT_SIZE;
  array.dtype = CKPT_DTYPE_INT64;
  array.tensor.data = data.data();
  array.tensor.ndim = 1;
  array.tensor.shape = shape;
  array.tensor.byte_offset = sizeof(int64_t);
  ckpt_value v{};
  v.struct_size = CKPT_VALUE_STRUCT_SIZE;
  v.kind = CKPT_VALUE_ARRAY;
  v.array = &array;
  const Array a = convert(v).as_array();
  CHECK(a.data() == data.data() + 1);
  CHECK(a.to_vector<int64_t>() == std::vector<int64_t>{20, 30});
}

TEST_CASE("protobuf values round-trip with their descriptors", "[bridge]") {
  CValueView view(Value::proto(sample_proto()));
  const Value back = convert(*view.get());
  CHECK(back.kind() == Value::Kind::kProto);
  CHECK(back.as_proto().full_name == "my.pkg.Config");
  CHECK(back.as_proto().bytes == sample_proto().bytes);
  CHECK(back.as_proto().descriptor_set == sample_proto().descriptor_set);
}

TEST_CASE(
    "user objects converted back point at the same object and keep "
    "the keepalive alive",
    "[bridge]") {
  auto object = std::make_shared<int>(42);
  CValueView view(Value::object("test.Counter", object));
  auto keepalive = std::make_shared<int>(0);
  const Value back = from_c_value(*view.get(), keepalive);
  CHECK(back.as_object().typestr == "test.Counter");
  CHECK(back.as_object().object.get() == object.get());
  const long before = keepalive.use_count();
  {
    Value copy = back;
    CHECK(keepalive.use_count() == before + 1);
  }
  CHECK(keepalive.use_count() == before);
}

namespace {

ckpt_value c_value(ckpt_value_kind kind) {
  ckpt_value v{};
  v.struct_size = CKPT_VALUE_STRUCT_SIZE;
  v.kind = kind;
  return v;
}

std::string plugin_error_of(const ckpt_value& v) {
  return message_of<PluginError>([&] { convert(v); });
}

}  // namespace

TEST_CASE("C dicts and lists without their children are refused", "[bridge]") {
  ckpt_value child = c_value(CKPT_VALUE_INT);
  const char* keys[] = {"a"};

  ckpt_value dict = c_value(CKPT_VALUE_DICT);
  dict.count = 1;
  CHECK_THAT(plugin_error_of(dict), Catch::Contains("dict"));
  dict.children = &child;  // keys still missing
  CHECK_THAT(plugin_error_of(dict), Catch::Contains("keys"));
  dict.children = nullptr;
  dict.keys = keys;  // children still missing
  CHECK_THROWS_AS(convert(dict), PluginError);
  dict.children = &child;
  CHECK(convert(dict) == Value::dict({{"a", 0}}));

  ckpt_value list = c_value(CKPT_VALUE_LIST);
  list.count = 2;
  CHECK_THAT(plugin_error_of(list), Catch::Contains("children"));
  // No children are fine when there are none.
  list.count = 0;
  CHECK(convert(list) == Value::list());
}

TEST_CASE("C arrays without an array or with a bad shape are refused",
          "[bridge]") {
  CHECK_THAT(plugin_error_of(c_value(CKPT_VALUE_ARRAY)),
             Catch::Contains("without array"));
  CHECK_THROWS_AS(convert(c_value(CKPT_VALUE_ARRAY_SPEC)), PluginError);

  float data[4] = {};
  int64_t shape[] = {4};
  ckpt_array array{};
  array.struct_size = CKPT_ARRAY_STRUCT_SIZE;
  array.dtype = CKPT_DTYPE_FLOAT32;
  array.tensor.data = data;
  array.tensor.ndim = -1;
  array.tensor.shape = shape;
  ckpt_value v = c_value(CKPT_VALUE_ARRAY);
  v.array = &array;
  CHECK_THAT(plugin_error_of(v), Catch::Contains("shape"));
  ckpt_value spec = c_value(CKPT_VALUE_ARRAY_SPEC);
  spec.array = &array;
  CHECK_THROWS_AS(convert(spec), PluginError);

  array.tensor.ndim = 1;
  array.tensor.shape = nullptr;
  CHECK_THROWS_AS(convert(v), PluginError);
  array.tensor.shape = shape;
  CHECK(convert(v).as_array().shape() == Shape{4});
}

TEST_CASE("C values of unknown or host-only kinds are refused", "[bridge]") {
  CHECK_THAT(plugin_error_of(c_value(static_cast<ckpt_value_kind>(99))),
             Catch::Contains("unsupported kind 99"));
  CHECK_THAT(plugin_error_of(c_value(CKPT_VALUE_STATEFUL)),
             Catch::Contains("unsupported kind"));
}

TEST_CASE("C protobuf values without a type name are refused", "[bridge]") {
  CHECK_THAT(plugin_error_of(c_value(CKPT_VALUE_PROTO)),
             Catch::Contains("type name"));
  ckpt_proto proto{};
  proto.struct_size = CKPT_PROTO_STRUCT_SIZE;
  ckpt_value v = c_value(CKPT_VALUE_PROTO_TYPE);
  v.proto = &proto;
  CHECK_THAT(plugin_error_of(v), Catch::Contains("type name"));
  proto.full_name = "my.pkg.Config";
  CHECK(convert(v) == Value::proto_type(ProtoMessage{"my.pkg.Config", "", ""}));
}

TEST_CASE("other malformed C values are refused", "[bridge]") {
  ckpt_value object = c_value(CKPT_VALUE_OBJECT);
  CHECK_THAT(plugin_error_of(object), Catch::Contains("typestr"));
  ckpt_object no_typestr{};
  no_typestr.struct_size = CKPT_OBJECT_STRUCT_SIZE;
  object.object = &no_typestr;
  CHECK_THROWS_AS(convert(object), PluginError);

  ckpt_value scalar = c_value(CKPT_VALUE_SCALAR_SPEC);
  scalar.int_value = CKPT_VALUE_ARRAY;
  CHECK_THAT(plugin_error_of(scalar), Catch::Contains("scalar spec"));

  ckpt_value json = c_value(CKPT_VALUE_JSON);
  json.string_value = "{not json";
  json.string_len = 9;
  CHECK_THAT(plugin_error_of(json), Catch::Contains("JSON"));
}

TEST_CASE("C arrays of an invalid dtype are refused", "[bridge]") {
  float data[2] = {};
  int64_t shape[] = {2};
  ckpt_array array{};
  array.struct_size = CKPT_ARRAY_STRUCT_SIZE;
  array.tensor.data = data;
  array.tensor.ndim = 1;
  array.tensor.shape = shape;
  ckpt_value v = c_value(CKPT_VALUE_ARRAY);
  v.array = &array;
  ckpt_value spec = c_value(CKPT_VALUE_ARRAY_SPEC);
  spec.array = &array;
  for (int code : {99, static_cast<int>(CKPT_DTYPE_INVALID)}) {
    INFO("dtype " << code);
    array.dtype = static_cast<ckpt_dtype>(code);
    CHECK_THAT(message_of<Error>([&] { convert(v); }),
               Catch::Contains("dtype " + std::to_string(code)));
    CHECK_THROWS_AS(convert(spec), Error);
  }
  // Unknown is a dtype of array specs only.
  array.dtype = CKPT_DTYPE_UNKNOWN;
  CHECK_THROWS_AS(convert(v), Error);
  CHECK(convert(spec) == Value(ArraySpec{std::nullopt, {2}}));
}

TEST_CASE("ckpt and C dtype codes agree for every dtype", "[bridge]") {
  for (DType dtype : kAllDTypes) {
    INFO(dtype_name(dtype));
    const ckpt_dtype code = to_c_dtype(dtype);
    CHECK(from_c_dtype(code) == dtype);
    const sdk::DTypeInfo* info = sdk::dtype_info(code);
    REQUIRE(info != nullptr);
    CHECK(info->name == dtype_name(dtype));
    CHECK(info->size == dtype_size(dtype));
  }
}

TEST_CASE("from_c_dtype refuses codes that are no dtype", "[bridge]") {
  CHECK_THROWS_AS(from_c_dtype(CKPT_DTYPE_INVALID), InvalidArgumentError);
  CHECK_THROWS_AS(from_c_dtype(CKPT_DTYPE_UNKNOWN), InvalidArgumentError);
  CHECK_THAT(message_of<InvalidArgumentError>(
                 [] { from_c_dtype(static_cast<ckpt_dtype>(99)); }),
             Catch::Contains("99"));
}

TEST_CASE(
    "shared C views are shared only while a SharedCValueView of the "
    "same value object lives",
    "[bridge]") {
  const Value value = Value::dict({{"a", 1}});
  const Value equal_copy = value;
  CHECK(SharedCValueView::of(value) != SharedCValueView::of(value));
  std::shared_ptr<const CValueView> first;
  {
    SharedCValueView shared(value);
    first = SharedCValueView::of(value);
    CHECK(SharedCValueView::of(value) == first);
    CHECK(first->get()->count == 1);
    // An equal value that is another object gets its own view.
    CHECK(SharedCValueView::of(equal_copy) != first);
  }
  const auto after = SharedCValueView::of(value);
  CHECK(after != first);
  // The view handed out earlier outlives the SharedCValueView.
  CHECK(first->get()->kind == CKPT_VALUE_DICT);
}

TEST_CASE("shared C views are per thread", "[bridge]") {
  const Value value = Value::list({1, 2});
  SharedCValueView shared(value);
  const auto here = SharedCValueView::of(value);
  std::shared_ptr<const CValueView> there;
  std::thread([&] { there = SharedCValueView::of(value); }).join();
  REQUIRE(there != nullptr);
  CHECK(there != here);
  CHECK(SharedCValueView::of(value) == here);
}

TEST_CASE("nested shared C views may end in any order", "[bridge]") {
  const Value v1 = 1, v2 = 2, v3 = 3;
  for (int first_to_end : {0, 1, 2}) {
    INFO("first to end: " << first_to_end);
    std::unique_ptr<SharedCValueView> s[3] = {
        std::make_unique<SharedCValueView>(v1),
        std::make_unique<SharedCValueView>(v2),
        std::make_unique<SharedCValueView>(v3)};
    const Value* values[3] = {&v1, &v2, &v3};
    std::shared_ptr<const CValueView> views[3];
    for (int i = 0; i < 3; ++i) views[i] = SharedCValueView::of(*values[i]);

    s[first_to_end].reset();
    for (int i = 0; i < 3; ++i) {
      INFO("value " << i);
      CHECK((SharedCValueView::of(*values[i]) == views[i]) ==
            (i != first_to_end));
    }
    // End the other two, outermost first.
    for (int i = 0; i < 3; ++i) s[i].reset();
    for (int i = 0; i < 3; ++i) {
      CHECK(SharedCValueView::of(*values[i]) != views[i]);
    }
  }
}

TEST_CASE("the innermost shared C view of one value object wins", "[bridge]") {
  const Value value = "x";
  SharedCValueView outer(value);
  const auto outer_view = SharedCValueView::of(value);
  {
    SharedCValueView inner(value);
    const auto inner_view = SharedCValueView::of(value);
    CHECK(inner_view != outer_view);
    CHECK(SharedCValueView::of(value) == inner_view);
  }
  CHECK(SharedCValueView::of(value) == outer_view);
}

TEST_CASE(
    "C values with a struct_size below ABI 1.0's, arrays off the CPU and "
    "arrays without data are refused",
    "[bridge]") {
  float data[2] = {};
  int64_t shape[] = {2};
  ckpt_array array{};
  array.struct_size = CKPT_ARRAY_STRUCT_SIZE;
  array.dtype = CKPT_DTYPE_FLOAT32;
  array.tensor.data = data;
  array.tensor.ndim = 1;
  array.tensor.shape = shape;
  ckpt_value v = c_value(CKPT_VALUE_ARRAY);
  v.array = &array;
  REQUIRE(convert(v).as_array().num_elements() == 2);

  v.struct_size = 8;
  CHECK_THAT(plugin_error_of(v), Catch::Contains("struct_size"));
  v.struct_size = CKPT_VALUE_STRUCT_SIZE;
  array.struct_size = 8;
  CHECK_THAT(plugin_error_of(v), Catch::Contains("struct_size"));
  array.struct_size = CKPT_ARRAY_STRUCT_SIZE;

  array.tensor.device = DLDevice{kDLCUDA, 0};
  CHECK_THAT(plugin_error_of(v), Catch::Contains("CPU"));
  array.tensor.device = DLDevice{kDLCPU, 0};
  REQUIRE(convert(v).as_array().num_elements() == 2);

  array.tensor.data = nullptr;
  CHECK_THAT(plugin_error_of(v), Catch::Contains("without data"));
  // A zero-size array needs no data.
  shape[0] = 0;
  CHECK(convert(v).as_array().num_elements() == 0);
}
