// Helpers shared by the pytree plugin's tests.
#ifndef CKPT_TESTS_PYTREE_TEST_UTIL_H_
#define CKPT_TESTS_PYTREE_TEST_UTIL_H_

#include <ckpt/handler.h>
#include <ckpt/value.h>

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "records/tree_metadata.h"

namespace ckpt::test {

constexpr const char* kPyTreeTypestr = "ckpt.pytree.PyTreeHandler";

HandlerPtr pytree_handler();

// Saves `tree` into `dir` (created) with the pytree handler and the given
// "pytree" options, and waits for the background tier.
void save_tree(const std::filesystem::path& dir, const Value& tree,
               const nlohmann::json& pytree_options = nlohmann::json::object());
Value load_tree(
    const std::filesystem::path& dir, const Value* abstract_value = nullptr,
    const nlohmann::json& pytree_options = nlohmann::json::object());
Value tree_metadata(const std::filesystem::path& dir);

// A [2, 3] array of `dtype` whose elements differ from those of every other
// array made with another `seed`.
Array sample_array(DType dtype, int seed, Shape shape = {2, 3});

// Flips the first byte of the first place in `file` that holds exactly the
// bytes of `array`; returns false when they are not found.
bool corrupt_array_in_file(const std::filesystem::path& file,
                           const Array& array);

// Makes the pytree folder `dir` look written by ckpt before format 3: each
// tree index (_TREE_INDEX, _TREE_INDEX.process_<p>) replaced by its
// record as _METADATA (_METADATA.process_<p>) of format 2, which holds the
// arrays' storage and checksums too; loads then read _METADATA, and what
// the JSON reader checks is what a test exercises.
void as_format_2(const std::filesystem::path& dir);

// The tree index `file` (_TREE_INDEX by default) of the pytree folder `dir`,
// decoded.
ckpt::pytree::TreeMetadata read_index(const std::filesystem::path& dir,
                                      const std::string& file = "_TREE_INDEX");

// The record of `file` (_TREE_INDEX by default) in the pytree folder `dir`
// passed to `edit`, then written back, encoded afresh: what a hostile
// writer who knows the format would do.
void edit_index(const std::filesystem::path& dir,
                const std::function<void(ckpt::pytree::TreeMetadata&)>& edit,
                const std::string& file = "_TREE_INDEX");

// The leaf of `tree` at the dict keys `keys`; fails the test when there is
// none.
ckpt::pytree::LeafRecord& leaf_at(ckpt::pytree::TreeMetadata& tree,
                                  const std::vector<std::string>& keys);

}  // namespace ckpt::test

#endif  // CKPT_TESTS_PYTREE_TEST_UTIL_H_
