// `ckpt tree DIR [NAME]`: the structure of a pytree from its metadata
// alone (no array data is read), with dtype, shape and size per leaf.
#include <ckpt/checkpoint.h>
#include <ckpt/errors.h>

#include <cstdio>
#include <functional>
#include <iostream>

#include "commands.h"
#include "format.h"

namespace ckpt::tool {

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
  uint64_t arrays = 0, elements = 0, bytes = 0, leaves = 0;
  nlohmann::ordered_json leaves_json = nlohmann::ordered_json::array();

  // One leaf: its description, counted into the totals.
  auto describe_leaf = [&](const Value& v, const std::string& key_path) {
    ++leaves;
    nlohmann::ordered_json leaf = {{"path", key_path}};
    std::string text;
    if (v.kind() == Value::Kind::kArraySpec ||
        v.kind() == Value::Kind::kArray ||
        v.kind() == Value::Kind::kShardedSpec) {
      const ArraySpec spec =
          v.kind() == Value::Kind::kArraySpec ? v.as_array_spec()
          : v.kind() == Value::Kind::kShardedSpec
              ? ArraySpec{v.as_sharded_spec().dtype,
                          v.as_sharded_spec().global_shape}
              : ArraySpec{v.as_array().dtype(), v.as_array().shape()};
      uint64_t n = 1;
      for (int64_t d : spec.shape) n *= static_cast<uint64_t>(d);
      ++arrays;
      elements += n;
      text = std::string(dtype_name(spec.dtype)) + shape_text(spec.shape);
      leaf["dtype"] = dtype_name(spec.dtype);
      leaf["shape"] = spec.shape;
      if (spec.dtype) {
        const uint64_t size = n * dtype_size(*spec.dtype);
        bytes += size;
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
    } else if (v.kind() == Value::Kind::kScalarSpec) {
      text = std::string(kind_name(v.scalar_kind()));
      leaf["type"] = text;
    } else {
      text = to_json(v).dump();
      leaf["value"] = to_json(v);
    }
    leaves_json.push_back(leaf);
    return text;
  };

  // Prints the children of a container with box-drawing branches; `depth`:
  // the containers down to `node`, bounded since this recurses.
  std::function<void(const Value&, const std::string&, const std::string&,
                     size_t)>
      walk = [&](const Value& node, const std::string& key_path,
                 const std::string& prefix, size_t depth) {
        if (depth > kMaxNestingDepth) {
          throw DataLossError("the metadata of '" + shown +
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
          const std::string path =
              key_path.empty() ? key : key_path + "/" + key;
          const std::string line = prefix + (last ? "└── " : "├── ") + key;
          if (child->is_tree_container()) {
            if (!common.json) std::printf("%s\n", line.c_str());
            walk(*child, path, prefix + (last ? "    " : "│   "), depth + 1);
          } else {
            std::string text = describe_leaf(*child, path);
            if (!common.json)
              std::printf("%s  %s\n", line.c_str(), text.c_str());
          }
        }
      };
  if (!common.json) std::printf("%s\n", m.name.c_str());
  if (m.metadata.is_tree_container()) {
    walk(m.metadata, "", "", 1);
  } else {
    std::string text = describe_leaf(m.metadata, "");
    if (!common.json) std::printf("  %s\n", text.c_str());
  }
  if (common.json) {
    nlohmann::ordered_json out = {{"leaves", leaves_json},
                                  {"arrays", arrays},
                                  {"elements", elements},
                                  {"bytes", bytes}};
    std::cout << out.dump(2) << "\n";
  } else {
    std::printf("%llu leaves, %llu arrays, %llu elements, %s\n",
                static_cast<unsigned long long>(leaves),
                static_cast<unsigned long long>(arrays),
                static_cast<unsigned long long>(elements),
                human_bytes(bytes).c_str());
  }
  return 0;
}

}  // namespace ckpt::tool
