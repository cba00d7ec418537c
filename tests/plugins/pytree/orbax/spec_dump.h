// The spec format orbax_interop.py compares: what a value holds, written
// as OUT/spec.json plus one file per array (the format orbax_write_cases.py
// writes for what Orbax saved):
//   array  {"array": {"dtype": NAME, "shape": [...], "file": "N.bin"}}
//          (N.bin: the elements in C order, little-endian)
//   scalar {"int": V} {"float": V} {"bool": V} {"str": V} {"none": true}
//          (a float that is not finite as "nan", "inf", "-inf")
//   dict   {"dict": [[KEY, VALUE], ...]}    list {"list": [VALUE, ...]}
#ifndef CKPT_TESTS_PLUGINS_PYTREE_ORBAX_SPEC_DUMP_H_
#define CKPT_TESTS_PLUGINS_PYTREE_ORBAX_SPEC_DUMP_H_

#include <ckpt/value.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace orbax_test {

// Writes the arrays of the values it describes into its folder.
class Dumper {
 public:
  explicit Dumper(std::filesystem::path out) : out_(std::move(out)) {
    std::filesystem::create_directories(out_);
  }

  nlohmann::ordered_json spec(const ckpt::Value& v) {
    using K = ckpt::Value::Kind;
    switch (v.kind()) {
      case K::kNone:
        return {{"none", true}};
      case K::kBool:
        return {{"bool", v.as_bool()}};
      case K::kInt:
        return {{"int", v.as_int()}};
      case K::kDouble:
        return {{"float", real(v.as_double())}};
      case K::kString:
        return {{"str", v.as_string()}};
      case K::kArray:
        return array(v.as_array());
      case K::kDict: {
        nlohmann::ordered_json items = nlohmann::ordered_json::array();
        for (const auto& [key, child] : v.as_dict()) {
          items.push_back(nlohmann::ordered_json::array({key, spec(child)}));
        }
        return {{"dict", items}};
      }
      case K::kList: {
        nlohmann::ordered_json items = nlohmann::ordered_json::array();
        for (const ckpt::Value& child : v.as_list()) {
          items.push_back(spec(child));
        }
        return {{"list", items}};
      }
      case K::kJson:
        return {{"json", v.as_json()}};
      default:
        return {{"unexpected_kind", static_cast<int>(v.kind())}};
    }
  }

 private:
  static nlohmann::ordered_json real(double d) {
    if (std::isnan(d)) return "nan";
    if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
    return d;
  }

  nlohmann::ordered_json array(const ckpt::Array& a) {
    const ckpt::Array c = a.is_contiguous() ? a : a.contiguous_copy();
    const std::string file = std::to_string(next_++) + ".bin";
    std::ofstream(out_ / file, std::ios::binary)
        .write(static_cast<const char*>(c.data()),
               static_cast<std::streamsize>(c.nbytes()));
    return {{"array",
             {{"dtype", ckpt::dtype_name(c.dtype())},
              {"shape", c.shape()},
              {"file", file}}}};
  }

  std::filesystem::path out_;
  int next_ = 0;
};

}  // namespace orbax_test

#endif  // CKPT_TESTS_PLUGINS_PYTREE_ORBAX_SPEC_DUMP_H_
