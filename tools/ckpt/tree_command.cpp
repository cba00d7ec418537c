// `ckpt tree DIR [NAME]`: the structure of a pytree from its metadata
// alone (no array data is read), with dtype, shape and size per leaf.
#include <ckpt/checkpoint.h>
#include <ckpt/errors.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "commands.h"
#include "format.h"

namespace ckpt::tool {

namespace {

// Prints a pytree's metadata as a tree (or collects it as JSON with
// --json), counting leaves, arrays, elements and bytes.
class TreePrinter {
 public:
  TreePrinter(const Common& common, std::string shown)
      : common_(common), shown_(std::move(shown)) {}

  void print(const Metadata& m) {
    if (!common_.json) std::printf("%s\n", m.name.c_str());
    if (m.metadata.is_tree_container()) {
      walk(m.metadata, "", "", 1);
    } else {
      std::string text = describe_leaf(m.metadata, "");
      if (!common_.json) std::printf("  %s\n", text.c_str());
    }
    if (common_.json) {
      nlohmann::ordered_json out = {{"leaves", leaves_json_},
                                    {"arrays", arrays_},
                                    {"elements", elements_},
                                    {"bytes", bytes_}};
      std::cout << out.dump(2) << "\n";
    } else {
      std::printf("%llu leaves, %llu arrays, %llu elements, %s\n",
                  static_cast<unsigned long long>(leaves_),
                  static_cast<unsigned long long>(arrays_),
                  static_cast<unsigned long long>(elements_),
                  human_bytes(bytes_).c_str());
    }
  }

 private:
  // An array, array spec or sharded spec leaf: its text, and its fields
  // in `leaf`.
  std::string describe_array(const Value& v, nlohmann::ordered_json& leaf) {
    const ArraySpec spec =
        v.kind() == Value::Kind::kArraySpec ? v.as_array_spec()
        : v.kind() == Value::Kind::kShardedSpec
            ? ArraySpec{v.as_sharded_spec().dtype,
                        v.as_sharded_spec().global_shape}
            : ArraySpec{v.as_array().dtype(), v.as_array().shape()};
    uint64_t n = 1;
    for (int64_t d : spec.shape) n *= static_cast<uint64_t>(d);
    ++arrays_;
    elements_ += n;
    std::string text =
        std::string(dtype_name(spec.dtype)) + shape_text(spec.shape);
    leaf["dtype"] = dtype_name(spec.dtype);
    leaf["shape"] = spec.shape;
    if (spec.dtype) {
      const uint64_t size = n * dtype_size(*spec.dtype);
      bytes_ += size;
      text += "  " + human_bytes(size);
      leaf["bytes"] = size;
    } else {
      // Not recorded (Orbax): the size is not known either.
      leaf["bytes"] = nullptr;
    }
    if (v.kind() == Value::Kind::kShardedSpec) {
      // A global array stored in pieces (a multi-process save).
      const std::vector<Box>& boxes = v.as_sharded_spec().boxes;
      text += "  in " + std::to_string(boxes.size()) +
              (boxes.size() == 1 ? " piece" : " pieces");
      nlohmann::ordered_json sharding = nlohmann::ordered_json::array();
      for (const Box& box : boxes) {
        sharding.push_back({{"offset", box.offset}, {"shape", box.shape}});
      }
      leaf["sharding"] = std::move(sharding);
    }
    return text;
  }

  // One leaf: its description, counted into the totals.
  std::string describe_leaf(const Value& v, const std::string& key_path) {
    ++leaves_;
    nlohmann::ordered_json leaf = {{"path", key_path}};
    std::string text;
    if (v.kind() == Value::Kind::kArraySpec ||
        v.kind() == Value::Kind::kArray ||
        v.kind() == Value::Kind::kShardedSpec) {
      text = describe_array(v, leaf);
    } else if (v.kind() == Value::Kind::kScalarSpec) {
      text = std::string(kind_name(v.scalar_kind()));
      leaf["type"] = text;
    } else {
      leaf["value"] = leaf_json(v);
      text = leaf["value"].dump();
    }
    leaves_json_.push_back(leaf);
    return text;
  }

  // Prints the children of a container with box-drawing branches; `depth`:
  // the containers down to `node`, bounded since this recurses.
  void walk(const Value& node, const std::string& key_path,
            const std::string& prefix, size_t depth) {
    if (depth > kMaxNestingDepth) {
      throw DataLossError("the metadata of '" + shown_ +
                          "' nests deeper than " +
                          std::to_string(kMaxNestingDepth) + " levels");
    }
    std::vector<std::pair<std::string, const Value*>> children;
    if (node.kind() == Value::Kind::kDict) {
      for (const auto& [k, child] : node.as_dict())
        children.emplace_back(k, &child);
    } else {
      for (size_t i = 0; i < node.size(); ++i) {
        children.emplace_back(std::to_string(i), &node.as_list()[i]);
      }
    }
    for (size_t i = 0; i < children.size(); ++i) {
      const bool last = i + 1 == children.size();
      const auto& [key, child] = children[i];
      const std::string path = key_path.empty() ? key : key_path + "/" + key;
      const std::string line = prefix + (last ? "└── " : "├── ") + key;
      if (child->is_tree_container()) {
        if (!common_.json) std::printf("%s\n", line.c_str());
        walk(*child, path, prefix + (last ? "    " : "│   "), depth + 1);
      } else {
        std::string text = describe_leaf(*child, path);
        if (!common_.json) std::printf("%s  %s\n", line.c_str(), text.c_str());
      }
    }
  }

  const Common& common_;
  const std::string shown_;
  uint64_t arrays_ = 0, elements_ = 0, bytes_ = 0, leaves_ = 0;
  nlohmann::ordered_json leaves_json_ = nlohmann::ordered_json::array();
};

}  // namespace

int run_tree(const Common& common, const std::string& dir,
             const std::string& name) {
  const std::string shown = name.empty() ? kDefaultCheckpointableName : name;
  const std::string not_a_tree = "checkpointable '" + shown + "' in " + dir +
                                 " is not a pytree; `ckpt cat " + dir + " " +
                                 shown + "` prints it";
  Metadata m;
  try {
    m = metadata(dir, name.empty() ? kAutoName : name);
  } catch (const UnimplementedError& e) {
    throw UnimplementedError(not_a_tree + " (" + e.what() + ")");
  }
  if (m.metadata.is_none()) throw UnimplementedError(not_a_tree);
  TreePrinter(common, shown).print(m);
  return 0;
}

}  // namespace ckpt::tool
