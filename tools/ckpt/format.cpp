#include "format.h"

#include <ckpt/errors.h>
#include <ckpt/sdk/half.h>
#include <ckpt/sdk/text.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <sstream>
#include <type_traits>

namespace ckpt::tool {

namespace {

using ckpt::sdk::bfloat16_to_float;
using ckpt::sdk::float_to_bfloat16;
using ckpt::sdk::float_to_half;
using ckpt::sdk::half_to_float;

// `v` rounded to the float type of `dtype` and back.
double round_to(double v, DType dtype) {
  switch (dtype) {
    case DType::kFloat16:
      return half_to_float(float_to_half(static_cast<float>(v)));
    case DType::kBFloat16:
      return bfloat16_to_float(float_to_bfloat16(static_cast<float>(v)));
    case DType::kFloat32:
    case DType::kComplex64:
      return static_cast<float>(v);
    default:
      return v;
  }
}

// The shortest text that reads back to the same value of `dtype` (a float
// or complex dtype), written as NumPy writes it: positional between 1e-4
// and 1e16 ("0.1", "100."), scientific otherwise ("1e-05", "1.5e+20").
std::string number_text(double v, DType dtype) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  char buffer[64];
  int digits = 1;
  for (; digits < 17; ++digits) {
    std::snprintf(buffer, sizeof buffer, "%.*e", digits - 1, v);
    if (round_to(std::strtod(buffer, nullptr), dtype) == v) break;
  }
  std::snprintf(buffer, sizeof buffer, "%.*e", digits - 1, v);
  const int exponent = std::atoi(std::strchr(buffer, 'e') + 1);
  std::string s;
  if (exponent >= -4 && exponent < 16) {
    std::snprintf(buffer, sizeof buffer, "%.*f",
                  std::max(0, digits - 1 - exponent), v);
    s = buffer;
    if (s.find('.') == std::string::npos) s += ".";
  } else {
    s = buffer;
    if (s.find('.') == std::string::npos) s.insert(s.find('e'), ".");
  }
  return s;
}

// Calls f with element `i` (C order of a contiguous array) as its C++
// type: bool, an integer, float (also for float16 and bfloat16), double,
// or std::complex.
template <class F>
auto visit_element(const Array& a, int64_t i, F f) {
  const char* p =
      static_cast<const char*>(a.data()) + i * dtype_size(a.dtype());
  auto load = [&](auto tag) {
    decltype(tag) v;
    std::memcpy(&v, p, sizeof v);
    return v;
  };
  switch (a.dtype()) {
    case DType::kBool:
      return f(load(uint8_t{}) != 0);
    case DType::kInt8:
      return f(load(int8_t{}));
    case DType::kInt16:
      return f(load(int16_t{}));
    case DType::kInt32:
      return f(load(int32_t{}));
    case DType::kInt64:
      return f(load(int64_t{}));
    case DType::kUInt8:
      return f(load(uint8_t{}));
    case DType::kUInt16:
      return f(load(uint16_t{}));
    case DType::kUInt32:
      return f(load(uint32_t{}));
    case DType::kUInt64:
      return f(load(uint64_t{}));
    case DType::kFloat16:
      return f(half_to_float(load(uint16_t{})));
    case DType::kBFloat16:
      return f(bfloat16_to_float(load(uint16_t{})));
    case DType::kFloat32:
      return f(load(float{}));
    case DType::kFloat64:
      return f(load(double{}));
    case DType::kComplex64:
      return f(load(std::complex<float>{}));
    case DType::kComplex128:
      return f(load(std::complex<double>{}));
  }
  return f(false);
}

template <class T>
struct is_complex : std::false_type {};
template <class T>
struct is_complex<std::complex<T>> : std::true_type {};

std::string element_text(const Array& a, int64_t i) {
  const DType dtype = a.dtype();
  return visit_element(a, i, [dtype](auto v) -> std::string {
    using T = decltype(v);
    if constexpr (std::is_same_v<T, bool>) {
      return v ? "True" : "False";
    } else if constexpr (std::is_integral_v<T>) {
      return std::to_string(v);
    } else if constexpr (is_complex<T>::value) {
      return number_text(v.real(), dtype) + (v.imag() < 0 ? "" : "+") +
             number_text(v.imag(), dtype) + "j";
    } else {
      return number_text(v, dtype);
    }
  });
}

nlohmann::ordered_json element_json(const Array& a, int64_t i) {
  return visit_element(a, i, [](auto v) -> nlohmann::ordered_json {
    if constexpr (is_complex<decltype(v)>::value) {
      return {v.real(), v.imag()};
    } else {
      return v;
    }
  });
}

// The printers recurse once per dimension of an array and once per level
// of a tree: both are bounded (a value loaded through a handler is, but a
// checkpoint's files may claim anything).
void check_dimensions(const Array& a) {
  if (a.shape().size() > kMaxNestingDepth) {
    throw DataLossError("an array of " + std::to_string(a.shape().size()) +
                        " dimensions (more than " +
                        std::to_string(kMaxNestingDepth) +
                        ") cannot be printed");
  }
}

void check_depth(size_t depth) {
  if (depth > kMaxNestingDepth) {
    throw DataLossError("a tree nested deeper than " +
                        std::to_string(kMaxNestingDepth) +
                        " levels cannot be printed");
  }
}

}  // namespace

std::string human_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, u ? "%.1f %s" : "%.0f %s", v, units[u]);
  return buffer;
}

std::string time_text(const std::optional<int64_t>& nsecs) {
  if (!nsecs) return "unknown";
  std::time_t seconds = static_cast<std::time_t>(*nsecs / 1000000000);
  char buffer[64];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M:%S UTC",
                std::gmtime(&seconds));
  return buffer;
}

uint64_t bytes_on_disk(const std::filesystem::path& path) {
  uint64_t total = 0;
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) {
    return std::filesystem::file_size(path, ec);
  }
  for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
       it != std::filesystem::recursive_directory_iterator();
       it.increment(ec)) {
    if (ec) break;
    if (it->is_regular_file(ec)) total += it->file_size(ec);
  }
  return total;
}

std::string array_text(const Array& input, bool full) {
  check_dimensions(input);
  Array a = input.is_contiguous() ? input : input.contiguous_copy();
  const Shape& shape = a.shape();
  const int64_t edge = 3;
  const bool summarize = !full && a.num_elements() > 1000;
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;)
    strides[d - 1] = strides[d] * shape[d];
  std::function<std::string(size_t, int64_t)> render = [&](size_t dim,
                                                           int64_t offset) {
    if (dim == shape.size()) return element_text(a, offset);
    std::string out = "[";
    const int64_t n = shape[dim];
    const bool innermost = dim + 1 == shape.size();
    // Rows wrap at 75 columns, continuation lines indented under the
    // first element, as NumPy prints them.
    const std::string indent(std::strlen("array(") + dim + 1, ' ');
    const std::string sep = innermost ? ", " : ",\n" + indent;
    size_t line = indent.size();
    for (int64_t i = 0; i < n; ++i) {
      std::string item;
      if (summarize && n > 2 * edge && i == edge) {
        item = "...";
        i = n - edge - 1;
      } else {
        item = render(dim + 1, offset + i * strides[dim]);
      }
      if (innermost && i > 0 && line + item.size() + 2 > 75) {
        out += ",\n" + indent;
        line = indent.size();
      } else if (out.size() > 1) {
        out += sep;
        line += sep.size();
      }
      out += item;
      line += item.size();
    }
    return out + "]";
  };
  std::string body = render(0, 0);
  return "array(" + body + ", dtype=" + std::string(dtype_name(a.dtype())) +
         (shape.empty() ? "" : ", shape=" + shape_text(shape)) + ")";
}

nlohmann::ordered_json leaf_json(const Value& value) {
  using K = Value::Kind;
  switch (value.kind()) {
    case K::kNone:
      return nullptr;
    case K::kBool:
      return value.as_bool();
    case K::kInt:
      return value.as_int();
    case K::kDouble:
      return value.as_double();
    case K::kString:
      return value.as_string();
    case K::kJson:
      return nlohmann::ordered_json::parse(value.as_json().dump());
    case K::kArraySpec:
      return {{"dtype", dtype_name(value.as_array_spec().dtype)},
              {"shape", value.as_array_spec().shape}};
    case K::kShardedSpec: {
      const ShardedSpec& spec = value.as_sharded_spec();
      nlohmann::ordered_json boxes = nlohmann::ordered_json::array();
      for (const Box& box : spec.boxes) {
        boxes.push_back({{"offset", box.offset}, {"shape", box.shape}});
      }
      return {{"dtype", dtype_name(spec.dtype)},
              {"shape", spec.global_shape},
              {"sharding", std::move(boxes)}};
    }
    case K::kScalarSpec:
      return {{"type", kind_name(value.scalar_kind())}};
    case K::kProto:
    case K::kProtoType:
      return {{"protobuf", value.as_proto().full_name}};
    default:
      return {{"kind", kind_name(value.kind())}};
  }
}

namespace {

// Writes JSON as nlohmann's dump(2) lays it out, one item at a time: an
// array of 2 GiB prints without a document of it in memory.
class JsonWriter {
 public:
  explicit JsonWriter(std::ostream& out) : out_(out) {}

  void value(const Value& v, size_t depth, size_t indent) {
    using K = Value::Kind;
    if (v.is_tree_container()) check_depth(++depth);
    switch (v.kind()) {
      case K::kDict: {
        size_t i = 0;
        out_ << '{';
        for (const auto& [k, child] : v.as_dict()) {
          item(i++, indent);
          out_ << nlohmann::ordered_json(k).dump() << ": ";
          value(child, depth, indent + 2);
        }
        close('}', v.size(), indent);
        return;
      }
      case K::kList: {
        size_t i = 0;
        out_ << '[';
        for (const auto& child : v.as_list()) {
          item(i++, indent);
          value(child, depth, indent + 2);
        }
        close(']', v.size(), indent);
        return;
      }
      case K::kArray: {
        check_dimensions(v.as_array());
        const Array a = v.as_array().is_contiguous()
                            ? v.as_array()
                            : v.as_array().contiguous_copy();
        array(a, 0, 0, indent);
        return;
      }
      default: {
        // A JSON leaf's own lines, indented where it sits.
        std::string text = leaf_json(v).dump(2);
        for (size_t at = text.find('\n'); at != std::string::npos;
             at = text.find('\n', at + 1 + indent)) {
          text.insert(at + 1, indent, ' ');
        }
        out_ << text;
      }
    }
  }

 private:
  void array(const Array& a, size_t dim, int64_t offset, size_t indent) {
    const Shape& shape = a.shape();
    if (dim == shape.size()) {
      out_ << element_json(a, offset).dump();
      return;
    }
    int64_t stride = 1;
    for (size_t d = dim + 1; d < shape.size(); ++d) stride *= shape[d];
    const size_t n = static_cast<size_t>(shape[dim]);
    out_ << '[';
    for (size_t i = 0; i < n; ++i) {
      item(i, indent);
      array(a, dim + 1, offset + static_cast<int64_t>(i) * stride, indent + 2);
    }
    close(']', n, indent);
  }
  void item(size_t i, size_t indent) {
    out_ << (i ? ",\n" : "\n") << std::string(indent + 2, ' ');
  }
  void close(char bracket, size_t size, size_t indent) {
    if (size != 0) out_ << "\n" << std::string(indent, ' ');
    out_ << bracket;
  }

  std::ostream& out_;
};

}  // namespace

void write_json(std::ostream& out, const Value& value) {
  JsonWriter(out).value(value, 0, 0);
  out << "\n";
}

std::string tree_text(const Value& value, bool full) {
  std::ostringstream out;
  std::function<void(const Value&, const std::string&, size_t)> walk =
      [&](const Value& v, const std::string& path, size_t depth) {
        if (v.kind() == Value::Kind::kDict || v.kind() == Value::Kind::kList) {
          check_depth(++depth);
          if (v.size() == 0) {
            out << path << ": "
                << (v.kind() == Value::Kind::kDict ? "{}" : "[]") << "\n";
          }
          size_t i = 0;
          if (v.kind() == Value::Kind::kDict) {
            for (const auto& [k, child] : v.as_dict())
              walk(child, path.empty() ? k : path + "/" + k, depth);
          } else {
            for (const auto& child : v.as_list()) {
              walk(child,
                   path.empty() ? std::to_string(i)
                                : path + "/" + std::to_string(i),
                   depth);
              ++i;
            }
          }
          return;
        }
        out << (path.empty() ? "" : path + ": ");
        if (v.kind() == Value::Kind::kArray) {
          out << array_text(v.as_array(), full) << "\n";
        } else if (v.kind() == Value::Kind::kJson) {
          out << v.as_json().dump(2) << "\n";
        } else {
          out << leaf_json(v).dump() << "\n";
        }
      };
  walk(value, "", 0);
  return out.str();
}

}  // namespace ckpt::tool
