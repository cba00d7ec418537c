// Rendering values for people (NumPy-like array summaries, sizes) and for
// scripts (JSON).
#ifndef CKPT_TOOLS_CKPT_FORMAT_H_
#define CKPT_TOOLS_CKPT_FORMAT_H_

#include <ckpt/sdk/text.h>
#include <ckpt/value.h>

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>

namespace ckpt::tool {

using ckpt::sdk::shape_text;  // "[2, 3]"

// "1.5 MiB".
std::string human_bytes(uint64_t bytes);
// "2026-11-29 14:15:12 UTC"; "unknown" for none.
std::string time_text(const std::optional<int64_t>& nsecs);
// Bytes of every regular file under `path`.
uint64_t bytes_on_disk(const std::filesystem::path& path);

// An array as NumPy prints it: nested brackets, "..." past `edge` items per
// dimension when the array has more than 1000 elements (unless full).
std::string array_text(const Array& array, bool full);

// A leaf that is no container or array as JSON (abstract leaves as
// {"dtype", "shape"} objects).
nlohmann::ordered_json leaf_json(const Value& value);
// A value as indented JSON, written as it goes (arrays as nested lists of
// numbers, other leaves as leaf_json): no document of it is built, so an
// array of any size prints in the memory it already takes.
void write_json(std::ostream& out, const Value& value);

// One line per leaf of a tree: "key/path: text".
std::string tree_text(const Value& value, bool full);

// The printers above throw DataLossError for a tree nested deeper than
// kMaxNestingDepth levels, or an array of more dimensions: they recurse
// once per level.

}  // namespace ckpt::tool

#endif  // CKPT_TOOLS_CKPT_FORMAT_H_
