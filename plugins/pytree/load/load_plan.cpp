#include "load/load_plan.h"

#include <ckpt/sdk/boxes.h>
#include <ckpt/sdk/error.h>
#include <ckpt/sdk/handler.h>
#include <ckpt/sdk/text.h>

#include <cmath>
#include <cstdint>

#include "save/snapshot.h"
#include "tree/cast.h"
#include "tree/dtypes.h"

namespace ckpt::pytree {

namespace {

using ckpt::sdk::Error;
using ckpt::sdk::OutValue;
using ckpt::sdk::shape_text;

const char* leaf_kind_name(LeafKind kind) {
  switch (kind) {
    case LeafKind::kArray:
      return "an array";
    case LeafKind::kBool:
      return "a bool";
    case LeafKind::kInt:
      return "an int";
    case LeafKind::kDouble:
      return "a double";
    case LeafKind::kString:
      return "a string";
    case LeafKind::kNone:
      return "none";
    case LeafKind::kEmptyDict:
      return "an empty dict";
    case LeafKind::kEmptyList:
      return "an empty list";
  }
  return "a leaf";
}

// The value of a saved non-array leaf, as saved.
OutValue saved_leaf_value(const LeafRecord& leaf) {
  switch (leaf.kind) {
    case LeafKind::kBool:
      return OutValue::boolean(leaf.bool_value);
    case LeafKind::kInt:
      return OutValue::integer(leaf.int_value);
    case LeafKind::kDouble:
      return OutValue::real(leaf.double_value);
    case LeafKind::kString:
      return OutValue::string(leaf.string_value);
    case LeafKind::kEmptyDict:
      return OutValue::dict();
    case LeafKind::kEmptyList:
      return OutValue::list();
    default:
      return OutValue::none();
  }
}

// A saved scalar converted to the scalar kind `want`.
OutValue convert_scalar(const LeafRecord& leaf, ckpt_value_kind want,
                        const std::string& where) {
  bool numeric = leaf.kind == LeafKind::kBool || leaf.kind == LeafKind::kInt ||
                 leaf.kind == LeafKind::kDouble;
  double as_double = leaf.kind == LeafKind::kBool ? (leaf.bool_value ? 1 : 0)
                     : leaf.kind == LeafKind::kInt
                         ? static_cast<double>(leaf.int_value)
                         : leaf.double_value;
  if (want == CKPT_VALUE_STRING && leaf.kind == LeafKind::kString) {
    return OutValue::string(leaf.string_value);
  }
  if (numeric) {
    switch (want) {
      case CKPT_VALUE_BOOL:
        return OutValue::boolean(as_double != 0);
      case CKPT_VALUE_DOUBLE:
        return OutValue::real(as_double);
      case CKPT_VALUE_INT:
        if (leaf.kind == LeafKind::kInt)
          return OutValue::integer(leaf.int_value);
        if (std::isfinite(as_double) && std::fabs(as_double) < 9.2e18) {
          return OutValue::integer(static_cast<int64_t>(as_double));
        }
        break;
      default:
        break;
    }
  }
  throw Error(CKPT_ERROR_INVALID_ARGUMENT,
              where + ": the checkpoint holds " + leaf_kind_name(leaf.kind) +
                  ", which cannot be loaded as the requested scalar kind");
}

class Planner {
 public:
  Planner(LoadPlan& plan, const LoadOptions& options, const std::string& what)
      : plan_(plan), options_(options), what_(what) {}

  // Indexes the saved key paths for build(): as a trie, memory in
  // proportion to the keys, whatever the depth (a map of every prefix would
  // grow with its square).
  void index_saved_paths() {
    const auto& leaves = plan_.saved.leaves;
    visited_.assign(leaves.size(), false);
    trie_.emplace_back();
    for (size_t i = 0; i < leaves.size(); ++i) {
      size_t node = 0;
      for (const KeyEntry& key : leaves[i].path) {
        size_t next = trie_.size();
        auto [it, fresh] =
            trie_[node].children[slot(key)].emplace(key.key, next);
        node = it->second;  // read before trie_ grows
        if (fresh) trie_.emplace_back();
      }
      trie_[node].leaf = i;
    }
  }

  // The node for the abstract value `a` at `path` (trie node `at`, kAbsent
  // when the checkpoint has nothing there), marking the saved leaves it
  // covers visited. Throws sdk::Error as plan_load() documents.
  std::unique_ptr<OutNode> build(const ckpt_value& a, KeyPath& path,
                                 size_t at = 0) {
    std::string where = what_ + ": key path " + key_path_repr(path);
    SavedAt saved = saved_at(at);
    auto node = std::make_unique<OutNode>();
    if (a.kind == CKPT_VALUE_DICT || a.kind == CKPT_VALUE_LIST) {
      if (path.size() >= kMaxTreeDepth && a.count != 0) {
        throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                    where + ": the abstract tree is nested deeper than " +
                        std::to_string(kMaxTreeDepth) + " levels");
      }
      build_container(a, path, at, saved, where, *node);
    } else {
      build_leaf(a, saved, where, *node);
    }
    return node;
  }

  // Every saved leaf the abstract tree did not mention, unless partial.
  void check_all_visited() {
    if (options_.partial_load) return;
    for (size_t i = 0; i < visited_.size(); ++i) {
      if (visited_[i]) continue;
      throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                  what_ + ": the abstract tree lacks key path " +
                      key_path_repr(plan_.saved.leaves[i].path) +
                      ", which the checkpoint holds (enable partial_load to "
                      "load a subset)");
    }
  }

  void plan_as_saved(const LeafRecord& leaf, size_t index, OutNode& node) {
    if (leaf.kind != LeafKind::kArray) {
      node.set(saved_leaf_value(leaf));
      return;
    }
    ArrayLoad load = as_saved_load(index, leaf);
    load.assembled = leaf.sharded;
    node.array = static_cast<int>(plan_.arrays.size());
    plan_.arrays.push_back(std::move(load));
  }

 private:
  // Plans the sharded spec `a` (the boxes of the global array to load)
  // for the saved array `leaf`, sharded or not: the global shape must be
  // the saved one; the dtype is cast as for plain arrays.
  void plan_sharded(const ckpt_value& a, const LeafRecord& leaf, size_t index,
                    OutNode& node, const std::string& where) {
    if (leaf.kind != LeafKind::kArray) {
      throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                  where + ": the checkpoint holds " +
                      leaf_kind_name(leaf.kind) + ", not an array");
    }
    const ckpt_sharded_array* s = ckpt::sdk::sharded_of(a);
    if (!s || s->ndim < 0 || static_cast<size_t>(s->ndim) > kMaxRank ||
        (s->ndim > 0 && !s->global_shape) || (s->num_shards && !s->shards) ||
        s->num_shards > kMaxPieces) {
      throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                  where + ": the sharded spec is malformed");
    }
    ArrayLoad load;
    load.leaf = index;
    const bool as_saved = s->dtype == CKPT_DTYPE_UNKNOWN;
    if (!as_saved && !is_valid_dtype(s->dtype)) {
      throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                  where + ": the sharded spec has no valid dtype");
    }
    load.dtype = as_saved ? leaf.dtype : s->dtype;
    load.shape.assign(s->global_shape, s->global_shape + s->ndim);
    if (load.shape != leaf.shape) {
      throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                  where + ": global shape mismatch: the checkpoint holds " +
                      shape_text(leaf.shape) + ", the sharded spec asks for " +
                      shape_text(load.shape) +
                      " (resharding keeps the global shape)");
    }
    for (size_t i = 0; i < s->num_shards; ++i) {
      const ckpt_shard& box = s->shards[i];
      if (s->ndim > 0 && (!box.offset || !box.shape)) {
        throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                    where +
                        ": a box of the sharded spec has no offset or "
                        "shape");
      }
      StoredPiece b{std::vector<int64_t>(box.offset, box.offset + s->ndim),
                    std::vector<int64_t>(box.shape, box.shape + s->ndim), 0};
      if (!ckpt::sdk::box_inside(b, load.shape)) {
        throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                    where + ": the box " + ckpt::sdk::box_text(b) +
                        " ([offset, shape]) does not lie inside the global "
                        "shape " +
                        shape_text(load.shape));
      }
      load.boxes.push_back(std::move(b));
    }
    load.assembled = true;
    load.sharded_out = true;
    add_assembled(std::move(load), leaf, index, node);
  }

  // Adds the assembled load `load` of saved leaf `leaf` (index `index`),
  // with the whole-array read a saved plain array needs.
  void add_assembled(ArrayLoad load, const LeafRecord& leaf, size_t index,
                     OutNode& node) {
    if (!leaf.sharded) {
      load.source = static_cast<int>(plan_.arrays.size());
      plan_.arrays.push_back(as_saved_load(index, leaf));
    }
    node.array = static_cast<int>(plan_.arrays.size());
    plan_.arrays.push_back(std::move(load));
  }

  void plan_array(const ckpt_value& a, const LeafRecord& leaf, size_t index,
                  OutNode& node, const std::string& where) {
    if (leaf.kind != LeafKind::kArray) {
      throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                  where + ": the checkpoint holds " +
                      leaf_kind_name(leaf.kind) + ", not an array");
    }
    const ckpt_array* spec = a.array;
    const bool as_saved = spec && spec->dtype == CKPT_DTYPE_UNKNOWN;
    if (!spec || (!as_saved && !is_valid_dtype(spec->dtype))) {
      throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                  where + ": the abstract array has no valid dtype");
    }
    ArrayLoad load;
    load.leaf = index;
    // An array spec of unknown dtype (ABI 1.1) loads the dtype saved.
    load.dtype = as_saved ? leaf.dtype : spec->dtype;
    if (spec->tensor.ndim < 0 ||
        static_cast<size_t>(spec->tensor.ndim) > kMaxRank ||
        (spec->tensor.ndim > 0 && !spec->tensor.shape)) {
      throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                  where + ": the abstract array has no valid shape");
    }
    load.shape.assign(spec->tensor.shape,
                      spec->tensor.shape + spec->tensor.ndim);
    if (!checked_size(load.shape, ckpt::sdk::dtype_size(load.dtype), nullptr,
                      nullptr)) {
      throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                  where + ": the abstract array's shape " +
                      shape_text(load.shape) + " is negative or too large");
    }
    if (load.shape != leaf.shape) {
      bool same_rank = load.shape.size() == leaf.shape.size();
      if (!options_.allow_shape_mismatch || !same_rank) {
        throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                    where + ": shape mismatch: the checkpoint holds " +
                        shape_text(leaf.shape) +
                        ", the abstract tree asks for " +
                        shape_text(load.shape) +
                        (same_rank ? " (enable allow_shape_mismatch to pad or "
                                     "truncate)"
                                   : " (ranks differ)"));
      }
    }
    if (a.kind == CKPT_VALUE_ARRAY && spec->tensor.data &&
        !(spec->flags & CKPT_ARRAY_IMMUTABLE) && is_c_contiguous(*spec)) {
      load.caller_buffer =
          static_cast<char*>(spec->tensor.data) + spec->tensor.byte_offset;
    }
    if (leaf.sharded) {
      if (load.shape != leaf.shape) {
        throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                    where + ": a sharded array loads at its global shape " +
                        shape_text(leaf.shape) + ", not " +
                        shape_text(load.shape));
      }
      load.assembled = true;
    }
    node.array = static_cast<int>(plan_.arrays.size());
    plan_.arrays.push_back(std::move(load));
  }

  // What the checkpoint holds at one key path: a leaf, the root of a
  // subtree, or (neither set) nothing.
  struct SavedAt {
    const LeafRecord* leaf = nullptr;
    size_t index = 0;  // of `leaf` in plan_.saved.leaves
    bool is_subtree = false;
  };

  // A node of the trie of saved key paths: its children by key, dict keys
  // and list indices apart.
  static constexpr size_t kAbsent = SIZE_MAX;
  struct TrieNode {
    std::unordered_map<std::string, size_t> children[2];
    size_t leaf = kAbsent;  // index in plan_.saved.leaves
  };
  static int slot(const KeyEntry& key) {
    return key.type == KeyType::kSequence ? 1 : 0;
  }

  // The trie node of `key` below node `at`; kAbsent when there is none.
  size_t child_of(size_t at, const KeyEntry& key) const {
    if (at == kAbsent) return kAbsent;
    const auto& children = trie_[at].children[slot(key)];
    auto it = children.find(key.key);
    return it == children.end() ? kAbsent : it->second;
  }

  // What the checkpoint holds at trie node `at`.
  SavedAt saved_at(size_t at) const {
    SavedAt saved;
    if (at == kAbsent) return saved;
    const TrieNode& n = trie_[at];
    if (n.leaf != kAbsent) {
      saved.leaf = &plan_.saved.leaves[n.leaf];
      saved.index = n.leaf;
    }
    saved.is_subtree = !n.children[0].empty() || !n.children[1].empty();
    return saved;
  }

  // Fills `node` for the abstract dict or list `a` at `path` (trie node
  // `at`): an empty container where the checkpoint saved one, else its
  // children built one by one. Throws as build() does.
  void build_container(const ckpt_value& a, KeyPath& path, size_t at,
                       const SavedAt& saved, const std::string& where,
                       OutNode& node) {
    node.kind =
        a.kind == CKPT_VALUE_DICT ? OutNode::Kind::kDict : OutNode::Kind::kList;
    if (saved.leaf) {
      bool empty_container = saved.leaf->kind == LeafKind::kEmptyDict ||
                             saved.leaf->kind == LeafKind::kEmptyList;
      if (!empty_container || a.count != 0) {
        throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                    where +
                        ": the abstract tree has a container where the "
                        "checkpoint holds " +
                        leaf_kind_name(saved.leaf->kind));
      }
      visited_[saved.index] = true;
      return;
    }
    if (!saved.is_subtree && !(path.empty() && a.count == 0)) {
      throw Error(CKPT_ERROR_NOT_FOUND, where + " is not in the checkpoint");
    }
    for (size_t i = 0; i < a.count; ++i) {
      std::string key = a.kind == CKPT_VALUE_DICT ? (a.keys[i] ? a.keys[i] : "")
                                                  : std::to_string(i);
      path.push_back({key, a.kind == CKPT_VALUE_DICT ? KeyType::kDict
                                                     : KeyType::kSequence});
      node.children.push_back(
          build(a.children[i], path, child_of(at, path.back())));
      node.keys.push_back(key);
      path.pop_back();
    }
  }

  // Fills `node` for the abstract leaf `a`: skipped for a placeholder, else
  // the saved leaf's value or the plan to read its array. Throws as build()
  // does.
  void build_leaf(const ckpt_value& a, const SavedAt& saved,
                  const std::string& where, OutNode& node) {
    if (!saved.leaf) {
      if (saved.is_subtree) {
        throw Error(
            CKPT_ERROR_INVALID_ARGUMENT,
            where + (a.kind == CKPT_VALUE_PLACEHOLDER
                         ? ": a placeholder stands for a subtree of the "
                           "checkpoint; placeholders may only replace leaves"
                         : ": the abstract tree has a leaf where the "
                           "checkpoint holds a subtree"));
      }
      throw Error(CKPT_ERROR_NOT_FOUND, where + " is not in the checkpoint");
    }
    visited_[saved.index] = true;
    switch (a.kind) {
      case CKPT_VALUE_PLACEHOLDER:
        // Skipped: nothing is read; the loaded tree keeps the placeholder.
        node.set(OutValue::placeholder());
        return;
      case CKPT_VALUE_NONE:
        plan_as_saved(*saved.leaf, saved.index, node);
        return;
      case CKPT_VALUE_ARRAY:
      case CKPT_VALUE_ARRAY_SPEC:
        plan_array(a, *saved.leaf, saved.index, node, where);
        return;
      case CKPT_VALUE_SHARDED_SPEC:
        plan_sharded(a, *saved.leaf, saved.index, node, where);
        return;
      case CKPT_VALUE_SCALAR_SPEC:
      case CKPT_VALUE_BOOL:
      case CKPT_VALUE_INT:
      case CKPT_VALUE_DOUBLE:
      case CKPT_VALUE_STRING: {
        ckpt_value_kind want = a.kind == CKPT_VALUE_SCALAR_SPEC
                                   ? static_cast<ckpt_value_kind>(a.int_value)
                                   : a.kind;
        node.set(convert_scalar(*saved.leaf, want, where));
        return;
      }
      default:
        throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                    where +
                        ": this kind of abstract leaf is not supported by "
                        "the pytree handler");
    }
  }

  LoadPlan& plan_;
  const LoadOptions& options_;
  const std::string& what_;
  std::vector<TrieNode> trie_;  // trie_[0] is the root
  std::vector<bool> visited_;
};

OutNode::Kind container_for(KeyType type) {
  return type == KeyType::kSequence ? OutNode::Kind::kList
                                    : OutNode::Kind::kDict;
}

// The containers of a saved structure as its records add leaves. Leaves
// come in tree order; a record that continues the previous leaf's path
// finds its containers on a stack. Only a record that returns to a
// container left earlier (which ckpt never writes, but _METADATA of
// another writer may) needs a lookup among the children, by a map made
// for that container then.
class StructureBuilder {
 public:
  StructureBuilder(const TreeMetadata& saved, const std::string& what)
      : saved_(saved), what_(what), path_nodes_{root_.get()} {}

  // The leaf node of record `i`, made with its containers; records come in
  // order.
  OutNode& add_leaf(size_t i) {
    const KeyPath& path = saved_.leaves[i].path;
    if (path.empty() && saved_.leaves.size() != 1) {
      throw Error(CKPT_ERROR_INVALID_LAYOUT,
                  where(path) + ": a root leaf among others");
    }
    const size_t shared = shared_with_previous(path);
    path_nodes_.resize(shared + 1);
    OutNode* node = path_nodes_.back();
    // Whether `node` may already hold the next key: the first key after
    // the shared ones may name a child made before, and so may each key
    // below a child found that way (not in a tree whose structure was
    // checked: there a subtree's leaves come together).
    bool may_exist = !saved_.structure_checked;
    for (size_t d = shared; d < path.size(); ++d) {
      const KeyEntry& key = path[d];
      OutNode::Kind kind = container_for(key.type);
      if (node->kind == OutNode::Kind::kLeaf && node->children.empty())
        node->kind = kind;
      if (node->kind != kind || node->array >= 0 || node->is_saved_leaf) {
        throw Error(CKPT_ERROR_INVALID_LAYOUT,
                    where(path) + ": inconsistent tree metadata");
      }
      OutNode* child = may_exist && !node->children.empty()
                           ? find_child(*node, key.key)
                           : nullptr;
      may_exist = child != nullptr;
      node = child ? child : add_child(*node, key.key);
      path_nodes_.push_back(node);
    }
    if (!node->children.empty() || node->is_saved_leaf) {
      throw Error(CKPT_ERROR_INVALID_LAYOUT, where(path) + ": recorded twice");
    }
    node->is_saved_leaf = true;
    previous_ = &path;
    return *node;
  }

  std::unique_ptr<OutNode> take_root() { return std::move(root_); }

 private:
  // Named only when something is wrong, not for every leaf.
  std::string where(const KeyPath& path) const {
    return what_ + ": key path " + key_path_repr(path);
  }

  // The containers `path` shares with the previous leaf's path.
  size_t shared_with_previous(const KeyPath& path) const {
    if (!previous_) return 0;
    size_t shared = 0;
    while (shared < previous_->size() && shared < path.size() &&
           (*previous_)[shared].key == path[shared].key &&
           (*previous_)[shared].type == path[shared].type) {
      ++shared;
    }
    if (shared == path.size() || shared == previous_->size()) {
      throw Error(
          CKPT_ERROR_INVALID_LAYOUT,
          where(path) + (shared == path.size() && shared == previous_->size()
                             ? ": recorded twice"
                             : ": inconsistent tree metadata"));
    }
    return shared;
  }

  OutNode* find_child(OutNode& parent, const std::string& key) {
    auto [it, fresh] = lookups_.try_emplace(&parent);
    if (fresh) {
      for (size_t i = 0; i < parent.keys.size(); ++i) {
        it->second.emplace(parent.keys[i], i);
      }
    }
    auto child = it->second.find(key);
    return child == it->second.end() ? nullptr
                                     : parent.children[child->second].get();
  }

  OutNode* add_child(OutNode& parent, const std::string& key) {
    auto known = lookups_.find(&parent);
    if (known != lookups_.end()) {
      known->second.emplace(key, parent.children.size());
    }
    parent.keys.push_back(key);
    parent.children.push_back(std::make_unique<OutNode>());
    return parent.children.back().get();
  }

  const TreeMetadata& saved_;
  const std::string& what_;
  std::unique_ptr<OutNode> root_ = std::make_unique<OutNode>();
  // Maps of the children of containers returned to (rare), by node.
  std::unordered_map<const OutNode*, std::unordered_map<std::string, size_t>>
      lookups_;
  std::vector<OutNode*> path_nodes_;  // of the previous leaf
  const KeyPath* previous_ = nullptr;
};

// The saved structure with a leaf per record; `fill` sets each leaf.
template <class Fill>
std::unique_ptr<OutNode> saved_structure(const TreeMetadata& saved,
                                         const std::string& what, Fill fill) {
  if (saved.leaves.empty()) {
    throw Error(CKPT_ERROR_INVALID_LAYOUT,
                what + ": the tree metadata has no leaves");
  }
  StructureBuilder builder(saved, what);
  for (size_t i = 0; i < saved.leaves.size(); ++i) {
    fill(i, builder.add_leaf(i));
  }
  return builder.take_root();
}

}  // namespace

ArrayLoad as_saved_load(size_t index, const LeafRecord& leaf) {
  ArrayLoad load;
  load.leaf = index;
  load.dtype = leaf.dtype;
  load.shape = leaf.shape;
  return load;
}

LoadPlan plan_load(TreeMetadata saved, const ckpt_value* abstract_value,
                   const LoadOptions& options, const std::string& what) {
  LoadPlan plan;
  plan.saved = std::move(saved);
  Planner planner(plan, options, what);
  if (!abstract_value) {
    size_t arrays = 0;
    for (const LeafRecord& leaf : plan.saved.leaves) {
      arrays += leaf.kind == LeafKind::kArray;
    }
    plan.arrays.reserve(arrays);
    plan.root = saved_structure(plan.saved, what, [&](size_t i, OutNode& node) {
      planner.plan_as_saved(plan.saved.leaves[i], i, node);
    });
    return plan;
  }
  KeyPath path;
  planner.index_saved_paths();
  plan.root = planner.build(*abstract_value, path);
  planner.check_all_visited();
  return plan;
}

OutValue abstract_tree(const TreeMetadata& saved, const std::string& what) {
  auto root = saved_structure(saved, what, [&](size_t i, OutNode& node) {
    const LeafRecord& leaf = saved.leaves[i];
    switch (leaf.kind) {
      case LeafKind::kArray:
        if (leaf.sharded && ckpt::sdk::host_abi_minor() >= 3) {
          // The global shape and the boxes stored (ABI 1.3).
          OutValue spec = OutValue::sharded_spec(leaf.dtype, leaf.shape);
          for (const StoredPiece& p : leaf.pieces) {
            spec.add_box(p.offset, p.shape);
          }
          node.set(std::move(spec));
          break;
        }
        // Orbax keeps dtypes in its array store, not in _METADATA: such
        // arrays have an unknown dtype (ABI 1.1; a 1.0 host gets float32,
        // the closest it can take).
        node.set(OutValue::array_spec(
            leaf.dtype != CKPT_DTYPE_INVALID   ? leaf.dtype
            : ckpt::sdk::host_abi_minor() >= 1 ? CKPT_DTYPE_UNKNOWN
                                               : CKPT_DTYPE_FLOAT32,
            leaf.shape));
        break;
      case LeafKind::kBool:
        node.set(OutValue::scalar_spec(CKPT_VALUE_BOOL));
        break;
      case LeafKind::kInt:
        node.set(OutValue::scalar_spec(CKPT_VALUE_INT));
        break;
      case LeafKind::kDouble:
        node.set(OutValue::scalar_spec(CKPT_VALUE_DOUBLE));
        break;
      case LeafKind::kString:
        node.set(OutValue::scalar_spec(CKPT_VALUE_STRING));
        break;
      default:
        node.set(saved_leaf_value(leaf));
        break;
    }
  });
  return to_out_value(*root);
}

OutValue to_out_value(OutNode& node, const std::vector<ArrayLoad>& arrays) {
  if (node.kind == OutNode::Kind::kLeaf) {
    if (node.value) return std::move(*node.value);
    if (node.data || node.owner) {
      const ArrayLoad& a = arrays.at(static_cast<size_t>(node.array));
      return OutValue::array(a.dtype, a.shape, node.data,
                             std::move(node.owner));
    }
    return OutValue();
  }
  OutValue out =
      node.kind == OutNode::Kind::kDict ? OutValue::dict() : OutValue::list();
  out.reserve(node.children.size());
  for (size_t i = 0; i < node.children.size(); ++i) {
    out.add(std::move(node.keys[i]), to_out_value(*node.children[i], arrays));
    node.children[i].reset();  // what it held is in `out` now
  }
  return out;
}

}  // namespace ckpt::pytree
