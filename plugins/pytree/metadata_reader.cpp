// Reading _METADATA: a streaming (SAX) parse straight into LeafRecords.
// A JSON document of every entry would cost tens of allocations per leaf
// and keep the entries' order only at quadratic cost.
#include <ckpt/sdk/error.h>

#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "dtypes.h"
#include "tree_metadata.h"

namespace ckpt_pytree {

namespace {

using json = nlohmann::json;

// One scalar JSON value.
struct Scalar {
  enum class Type {
    kNull,
    kBool,
    kInt,
    kUnsigned,
    kDouble,
    kString
  } type = Type::kNull;
  bool b = false;
  int64_t i = 0;
  uint64_t u = 0;
  double d = 0;
  std::string s;

  int64_t as_int() const {
    if (type == Type::kInt) return i;
    if (type == Type::kUnsigned) return static_cast<int64_t>(u);
    throw std::invalid_argument("expected an integer");
  }
  const std::string& as_string() const {
    if (type != Type::kString) throw std::invalid_argument("expected a string");
    return s;
  }
  double as_double() const {
    switch (type) {
      case Type::kInt:
        return static_cast<double>(i);
      case Type::kUnsigned:
        return static_cast<double>(u);
      case Type::kDouble:
        return d;
      case Type::kString:
        if (s == "nan") return NAN;
        if (s == "inf") return INFINITY;
        if (s == "-inf") return -INFINITY;
        break;
      default:
        break;
    }
    throw std::invalid_argument("expected a number");
  }
};

// The fields of one entry's value_metadata, in any order.
struct RawValue {
  std::string value_type, kind, dtype, dataset, xxh3;
  std::vector<int64_t> shape, write_shape;
  bool has_shape = false, has_offset = false, has_storage = false;
  uint64_t offset = 0;
  bool has_value = false;
  Scalar value;
};

void finish_leaf(const RawValue& raw, LeafRecord& leaf) {
  leaf.value_type = raw.value_type;
  const std::string& type = raw.value_type;
  if (type.empty()) throw std::invalid_argument("no value_type");
  if (type == kNoneValueType) {
    leaf.kind = LeafKind::kNone;
  } else if (type == kDictValueType) {
    leaf.kind = LeafKind::kEmptyDict;
  } else if (type == kListValueType || type == "Tuple") {
    leaf.kind = LeafKind::kEmptyList;
  } else if (type == kStringValueType) {
    leaf.kind = LeafKind::kString;
    leaf.has_value = raw.has_value;
    if (raw.has_value) leaf.string_value = raw.value.as_string();
  } else if (type == kScalarValueType) {
    // Orbax does not record which scalar kind; a number is the best guess.
    leaf.kind = raw.kind == "bool"  ? LeafKind::kBool
                : raw.kind == "int" ? LeafKind::kInt
                                    : LeafKind::kDouble;
    leaf.has_value = raw.has_value;
    if (raw.has_value) {
      if (leaf.kind == LeafKind::kBool) {
        if (raw.value.type != Scalar::Type::kBool)
          throw std::invalid_argument("expected a bool");
        leaf.bool_value = raw.value.b;
      } else if (leaf.kind == LeafKind::kInt) {
        leaf.int_value = raw.value.as_int();
      } else {
        leaf.double_value = raw.value.as_double();
      }
    }
  } else {
    // Every other value_type is an array: "np.ndarray", "jax.Array", ...
    leaf.kind = LeafKind::kArray;
    leaf.shape = raw.has_shape ? raw.shape : raw.write_shape;
    for (int64_t d : leaf.shape) {
      if (d < 0) throw std::invalid_argument("negative dimension");
    }
    if (!raw.dtype.empty()) {
      leaf.dtype = dtype_from_name(raw.dtype);
      if (leaf.dtype == CKPT_DTYPE_INVALID) {
        throw std::invalid_argument("unknown dtype \"" + raw.dtype + "\"");
      }
    }
    if (raw.has_storage) {
      leaf.location.dataset = raw.dataset;
      leaf.location.packed = raw.has_offset;
      leaf.location.offset = raw.offset;
    }
    if (!raw.xxh3.empty()) {
      char* end = nullptr;
      leaf.xxh3 = std::strtoull(raw.xxh3.c_str(), &end, 16);
      if (*end != '\0')
        throw std::invalid_argument("bad xxh3 checksum " + raw.xxh3);
      leaf.has_checksum = true;
    }
  }
}

// Frames: [root, "tree_metadata", entry, "key_metadata" | "value_metadata",
// then deeper]. Only the paths below are read; everything else is skipped.
class Reader : public nlohmann::json_sax<json> {
 public:
  explicit Reader(TreeMetadata& out) : out_(out) {}

  std::string where = "the tree metadata";
  bool ocdbt = false, zarr3 = false, has_format = false;

  bool null() override { return scalar(Scalar{}); }
  bool boolean(bool v) override {
    Scalar s;
    s.type = Scalar::Type::kBool;
    s.b = v;
    return scalar(s);
  }
  bool number_integer(number_integer_t v) override {
    Scalar s;
    s.type = Scalar::Type::kInt;
    s.i = v;
    return scalar(s);
  }
  bool number_unsigned(number_unsigned_t v) override {
    Scalar s;
    s.type = Scalar::Type::kUnsigned;
    s.u = v;
    return scalar(s);
  }
  bool number_float(number_float_t v, const string_t&) override {
    Scalar s;
    s.type = Scalar::Type::kDouble;
    s.d = v;
    return scalar(s);
  }
  bool string(string_t& v) override {
    Scalar s;
    s.type = Scalar::Type::kString;
    s.s = std::move(v);
    return scalar(s);
  }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return open(false); }
  bool start_array(std::size_t) override { return open(true); }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& e) override {
    throw std::invalid_argument("not JSON at byte " + std::to_string(position) +
                                ": " + e.what());
  }

 private:
  struct Frame {
    std::string name;
    bool is_array;
  };

  const std::string& name_here() const {
    static const std::string kElement = "[]";
    return !frames_.empty() && frames_.back().is_array ? kElement : key_;
  }
  bool in_tree() const {
    return frames_.size() >= 2 && frames_[1].name == "tree_metadata";
  }

  bool open(bool is_array) {
    frames_.push_back({frames_.empty() ? "" : name_here(), is_array});
    if (frames_.size() == 3 && in_tree()) {
      if (is_array) throw std::invalid_argument("an entry is not an object");
      where = "entry " + frames_[2].name;
      leaf_ = LeafRecord();
      raw_ = RawValue();
    }
    if (frames_.size() == 5 && in_tree() && frames_[3].name == "key_metadata") {
      leaf_.path.emplace_back();
    }
    if (frames_.size() == 5 && in_tree() && frames_[4].name == "storage") {
      raw_.has_storage = true;
    }
    return true;
  }

  bool close() {
    if (frames_.size() == 3 && in_tree()) {
      finish_leaf(raw_, leaf_);
      out_.leaves.push_back(std::move(leaf_));
    }
    if (frames_.size() == 2 && frames_[1].name == "tree_metadata")
      saw_tree_ = true;
    frames_.pop_back();
    return true;
  }

  bool scalar(const Scalar& v) {
    const std::string& name = name_here();
    size_t depth = frames_.size();
    if (depth == 1) {
      if (name == "use_ocdbt" && v.type == Scalar::Type::kBool) ocdbt = v.b;
      if (name == "use_zarr3" && v.type == Scalar::Type::kBool) zarr3 = v.b;
      if (name == "ckpt_storage_format") {
        out_.storage_format = v.as_string();
        has_format = true;
      }
      if (name == "ckpt_array_file") out_.array_file = v.as_string();
      return true;
    }
    if (!in_tree() || depth < 4) return true;
    const std::string& section = frames_[3].name;
    if (section == "key_metadata" && depth == 5) {
      KeyEntry& e = leaf_.path.back();
      if (name == "key")
        e.key =
            v.type == Scalar::Type::kString ? v.s : std::to_string(v.as_int());
      if (name == "key_type")
        e.type = v.as_int() == 1 ? KeyType::kSequence : KeyType::kDict;
    } else if (section == "value_metadata" && depth == 4) {
      if (name == "value_type") raw_.value_type = v.as_string();
      if (name == "kind") raw_.kind = v.as_string();
      if (name == "dtype") raw_.dtype = v.as_string();
      if (name == "xxh3") raw_.xxh3 = v.as_string();
      if (name == "value") {
        raw_.has_value = true;
        raw_.value = v;
      }
    } else if (section == "value_metadata" && depth == 5) {
      const std::string& field = frames_[4].name;
      if (field == "shape" || field == "write_shape") {
        (field == "shape" ? raw_.shape : raw_.write_shape)
            .push_back(v.as_int());
        if (field == "shape") raw_.has_shape = true;
      } else if (field == "storage") {
        if (name == "dataset") raw_.dataset = v.as_string();
        if (name == "offset") {
          raw_.has_offset = true;
          raw_.offset = static_cast<uint64_t>(v.as_int());
        }
      }
    }
    return true;
  }

 public:
  bool saw_tree() const { return saw_tree_; }

 private:
  TreeMetadata& out_;
  std::vector<Frame> frames_;
  std::string key_;
  LeafRecord leaf_;
  RawValue raw_;
  bool saw_tree_ = false;
};

}  // namespace

TreeMetadata parse_tree_metadata(const std::string& text,
                                 const std::string& what) {
  TreeMetadata out;
  Reader reader(out);
  try {
    json::sax_parse(text, &reader);
    if (!reader.saw_tree())
      throw std::invalid_argument("no tree_metadata object");
  } catch (const std::exception& e) {
    throw ckpt::sdk::Error(CKPT_ERROR_INVALID_LAYOUT,
                           what + " is not valid pytree metadata (" +
                               reader.where + ": " + e.what() + ")");
  }
  if (!reader.has_format) {
    out.storage_format = std::string("orbax.") +
                         (reader.ocdbt ? "ocdbt+" : "tensorstore+") +
                         (reader.zarr3 ? "zarr3" : "zarr");
    out.array_file.clear();
  }
  return out;
}

}  // namespace ckpt_pytree
