#include "plugins/pytree/pytree_test_util.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "records/tree_index.h"
#include "test_util.h"

namespace ckpt::test {

namespace {
CallContext call_for(const fs::path& dir, const nlohmann::json& options) {
  CallContext call;
  call.checkpointable_name = "state";
  call.directory = dir;
  if (!options.empty()) call.options = {{"pytree", options}};
  return call;
}
}  // namespace

HandlerPtr pytree_handler() {
  static HandlerPtr handler = make_handler(kPyTreeTypestr);
  return handler;
}

void save_tree(const fs::path& dir, const Value& tree,
               const nlohmann::json& pytree_options) {
  fs::create_directories(dir);
  pytree_handler()->save(call_for(dir, pytree_options), tree).get();
}

Value load_tree(const fs::path& dir, const Value* abstract_value,
                const nlohmann::json& pytree_options) {
  return pytree_handler()
      ->load(call_for(dir, pytree_options), abstract_value)
      .get();
}

Value tree_metadata(const fs::path& dir) {
  auto metadata =
      pytree_handler()->metadata(call_for(dir, nlohmann::json::object()));
  return metadata ? *metadata : Value();
}

Array sample_array(DType dtype, int seed, Shape shape) {
  Array a = Array::zeros(dtype, shape);
  auto* bytes = static_cast<unsigned char*>(a.data());
  size_t item = dtype_size(dtype);
  for (int64_t i = 0; i < a.num_elements(); ++i) {
    for (size_t b = 0; b < item; ++b) {
      // Low bits vary per element, high bits per seed; bool stays 0/1.
      unsigned char v =
          static_cast<unsigned char>((i * 7 + b * 13 + seed * 31) & 0x3f);
      bytes[i * item + b] = dtype == DType::kBool ? ((i + seed) & 1) : v;
    }
  }
  return a;
}

bool corrupt_array_in_file(const fs::path& file, const Array& array) {
  std::string content = read_text(file);
  Array c = array.contiguous_copy();
  std::string needle(static_cast<const char*>(c.data()), c.nbytes());
  size_t at = content.find(needle);
  if (at == std::string::npos || needle.empty()) return false;
  content[at] = static_cast<char>(content[at] ^ 0x5a);
  write_text(file, content);
  return true;
}

void as_format_2(const fs::path& dir) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(ckpt::pytree::kTreeIndexFile, 0) != 0) continue;
    // _TREE_INDEX[.process_<p>] -> _METADATA[.process_<p>]
    const std::string metadata =
        ckpt::pytree::kMetadataFile +
        name.substr(std::strlen(ckpt::pytree::kTreeIndexFile));
    ckpt::pytree::TreeMetadata tree =
        ckpt::pytree::decode_tree_index(read_text(entry.path()), name);
    tree.format = 2;
    write_text(dir / metadata, ckpt::pytree::format_tree_metadata(tree));
    fs::remove(entry.path());
  }
}

ckpt::pytree::TreeMetadata read_index(const fs::path& dir,
                                      const std::string& file) {
  return ckpt::pytree::decode_tree_index(read_text(dir / file), file);
}

void edit_index(const fs::path& dir,
                const std::function<void(ckpt::pytree::TreeMetadata&)>& edit,
                const std::string& file) {
  ckpt::pytree::TreeMetadata tree =
      ckpt::pytree::decode_tree_index(read_text(dir / file), file);
  edit(tree);
  write_text(dir / file, ckpt::pytree::encode_tree_index(tree));
}

ckpt::pytree::LeafRecord& leaf_at(ckpt::pytree::TreeMetadata& tree,
                                  const std::vector<std::string>& keys) {
  for (ckpt::pytree::LeafRecord& leaf : tree.leaves) {
    if (leaf.path.size() != keys.size()) continue;
    bool same = true;
    for (size_t i = 0; i < keys.size(); ++i) {
      same = same && leaf.path[i].key == keys[i];
    }
    if (same) return leaf;
  }
  FAIL("no leaf at the key path");
  throw std::logic_error("unreachable");
}

}  // namespace ckpt::test
