// Helpers shared by the pytree plugin's tests.
#ifndef CKPT_TESTS_PYTREE_TEST_UTIL_H_
#define CKPT_TESTS_PYTREE_TEST_UTIL_H_

#include <ckpt/handler.h>
#include <ckpt/value.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

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

}  // namespace ckpt::test

#endif  // CKPT_TESTS_PYTREE_TEST_UTIL_H_
