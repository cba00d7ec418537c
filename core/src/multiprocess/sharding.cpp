#include "multiprocess/sharding.h"

#include <ckpt/errors.h>
#include <ckpt/sdk/boxes.h>

#include <map>
#include <nlohmann/json.hpp>
#include <utility>

namespace ckpt::internal {

namespace {

using nlohmann::json;

// A sharded array of a checkpointable, and where it is.
struct ShardedLeaf {
  size_t item = 0;  // index into the checkpointables
  json path = json::array();
  ShardedArray* array = nullptr;
};

}  // namespace

// A walk without key paths, so that a save of many leaves and no sharded
// array pays only this.
bool holds_sharded(const Value& value) {
  std::vector<const Value*> pending = {&value};
  while (!pending.empty()) {
    const Value* v = pending.back();
    pending.pop_back();
    if (v->kind() == Value::Kind::kShardedArray) return true;
    if (v->kind() == Value::Kind::kDict) {
      for (const auto& item : v->as_dict()) pending.push_back(&item.second);
    } else if (v->kind() == Value::Kind::kList) {
      for (const Value& child : v->as_list()) pending.push_back(&child);
    }
  }
  return false;
}

namespace {

// Every sharded array of `items`, in tree order. Iterative.
std::vector<ShardedLeaf> sharded_leaves(Checkpointables& items) {
  std::vector<ShardedLeaf> out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!holds_sharded(items[i].second)) continue;
    // Children are pushed in reverse so that they are taken in order.
    std::vector<std::pair<Value*, json>> pending = {
        {&items[i].second, json::array()}};
    while (!pending.empty()) {
      auto [v, path] = std::move(pending.back());
      pending.pop_back();
      if (v->kind() == Value::Kind::kShardedArray) {
        out.push_back({i, path, &v->as_sharded_array()});
      } else if (v->kind() == Value::Kind::kDict) {
        auto& dict = v->as_dict();
        for (size_t k = dict.size(); k-- > 0;) {
          json child = path;
          child.push_back(dict[k].first);
          pending.emplace_back(&dict[k].second, std::move(child));
        }
      } else if (v->kind() == Value::Kind::kList) {
        auto& list = v->as_list();
        for (size_t k = list.size(); k-- > 0;) {
          json child = path;
          child.push_back(k);
          pending.emplace_back(&list[k], std::move(child));
        }
      }
    }
  }
  return out;
}

std::string where(const std::string& item, const json& path) {
  return "the sharded array at key path " + path.dump() +
         " of checkpointable '" + item + "'";
}

json box_json(const Box& box) { return json::array({box.offset, box.shape}); }

// The box `j` of a layout entry; InvalidArgumentError when malformed (a
// process of another build, or a bug).
Box box_from(const json& j, size_t rank) {
  Box box;
  if (!j.is_array() || j.size() != 2 || !j[0].is_array() || !j[1].is_array() ||
      j[0].size() != rank || j[1].size() != rank) {
    throw InternalError("a process described its shards unreadably");
  }
  for (size_t d = 0; d < rank; ++d) {
    if (!j[0][d].is_number_integer() || !j[1][d].is_number_integer()) {
      throw InternalError("a process described its shards unreadably");
    }
    box.offset.push_back(j[0][d].get<int64_t>());
    box.shape.push_back(j[1][d].get<int64_t>());
  }
  return box;
}

}  // namespace

std::string shard_layout(const Checkpointables& items) {
  json layout = json::array();
  // sharded_leaves takes mutable values; the layout only reads them.
  auto& mutable_items = const_cast<Checkpointables&>(items);
  for (const ShardedLeaf& leaf : sharded_leaves(mutable_items)) {
    const ShardedArray& a = *leaf.array;
    const std::string what = where(items[leaf.item].first, leaf.path);
    if (sdk::box_volume(a.global_shape) < 0) {
      throw InvalidArgumentError(what + ": the global shape " +
                                 json(a.global_shape).dump() +
                                 " is negative or too large");
    }
    json boxes = json::array();
    for (const Shard& s : a.shards) {
      const Box box = s.box();
      if (s.data.dtype() != a.dtype || !sdk::box_inside(box, a.global_shape)) {
        throw InvalidArgumentError(
            what + ": a " + std::string(dtype_name(s.data.dtype())) +
            " shard at offset " + json(box.offset).dump() + " of shape " +
            json(box.shape).dump() + " is not a " +
            std::string(dtype_name(a.dtype)) + " box inside the global shape " +
            json(a.global_shape).dump());
      }
      boxes.push_back(box_json(box));
    }
    layout.push_back({{"c", items[leaf.item].first},
                      {"k", leaf.path},
                      {"d", dtype_name(a.dtype)},
                      {"g", a.global_shape},
                      {"b", std::move(boxes)}});
  }
  return layout.dump();
}

namespace {

std::string process_name(size_t p, size_t processes) {
  return "process " + std::to_string(p) + " of " + std::to_string(processes);
}

// InvalidArgumentError unless process `p`'s layout entry `entry` names the
// same array as this process's `mine` (checkpointable, key path, dtype,
// global shape).
void check_same_array(const json& entry, const json& mine,
                      const std::string& what, size_t me, size_t p,
                      size_t processes) {
  for (const char* field : {"c", "k", "d", "g"}) {
    if (entry.value(field, json()) != mine.at(field)) {
      throw InvalidArgumentError(
          what + " (" + std::string(mine.at("d")) + " " + mine.at("g").dump() +
          ") on " + process_name(me, processes) + " is, on " +
          process_name(p, processes) + ", the array at key path " +
          entry.value("k", json()).dump() + " of checkpointable '" +
          entry.value("c", json("?")).get<std::string>() + "' (" +
          entry.value("d", json("?")).get<std::string>() + " " +
          entry.value("g", json()).dump() +
          "); every process must give the same sharded arrays, with "
          "the same dtype and global shape");
    }
  }
}

// The placement of sharded leaf `i` (`a`) over every process's layout:
// distinct pieces, their writers, and which piece each of this process's
// shards is.
std::shared_ptr<ShardPlacement> placement_of(const std::vector<json>& parsed,
                                             size_t i, size_t me,
                                             const ShardedArray& a,
                                             const std::string& what) {
  // This process's own entry: what every other process's must match.
  const json& mine = parsed[me][i];
  auto placement = std::make_shared<ShardPlacement>();
  std::map<std::pair<Shape, Shape>, size_t> index;  // box -> piece
  for (size_t p = 0; p < parsed.size(); ++p) {
    const json& entry = parsed[p][i];
    if (!entry.is_object() || !entry.contains("b") || !entry["b"].is_array()) {
      throw InternalError("a process described its shards unreadably");
    }
    check_same_array(entry, mine, what, me, p, parsed.size());
    for (const json& b : entry["b"]) {
      Box box = box_from(b, a.global_shape.size());
      auto [it, added] = index.emplace(std::make_pair(box.offset, box.shape),
                                       placement->pieces.size());
      if (added) {
        placement->pieces.push_back(box);
        placement->writers.push_back(static_cast<int>(p));
      }
      if (p == me) placement->piece_of_shard.push_back(it->second);
    }
  }
  const std::string problem =
      sdk::tiling_problem(placement->pieces, a.global_shape);
  if (!problem.empty()) {
    throw InvalidArgumentError(
        what + ": " + problem +
        "; the pieces of a global array, over every process, are either "
        "the same box (replicated) or disjoint, and together cover its "
        "global shape");
  }
  if (placement->piece_of_shard.size() != a.shards.size()) {
    throw InternalError(what + ": this process's layout lost shards");
  }
  return placement;
}

}  // namespace

void place_shards(Checkpointables& items,
                  const std::vector<std::string>& layouts, int me) {
  std::vector<json> parsed;
  for (const std::string& text : layouts) {
    json j = json::parse(text, nullptr, false);
    if (!j.is_array()) {
      throw InternalError("a process described its shards unreadably");
    }
    parsed.push_back(std::move(j));
  }
  std::vector<ShardedLeaf> leaves = sharded_leaves(items);
  if (me < 0 || static_cast<size_t>(me) >= parsed.size()) {
    throw InternalError("place_shards: no layout of this process");
  }
  const size_t self = static_cast<size_t>(me);
  for (size_t p = 0; p < parsed.size(); ++p) {
    if (parsed[p].size() != leaves.size()) {
      throw InvalidArgumentError(
          process_name(p, parsed.size()) + " gives " +
          std::to_string(parsed[p].size()) + " sharded arrays where " +
          process_name(self, parsed.size()) + " gives " +
          std::to_string(leaves.size()) +
          "; every process must give the same sharded arrays, at the same "
          "key paths");
    }
  }
  for (size_t i = 0; i < leaves.size(); ++i) {
    ShardedArray& a = *leaves[i].array;
    const std::string what = where(items[leaves[i].item].first, leaves[i].path);
    a.placement = placement_of(parsed, i, self, a, what);
  }
}

}  // namespace ckpt::internal
