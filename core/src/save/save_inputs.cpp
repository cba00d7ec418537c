#include "save/save_inputs.h"

#include <ckpt/errors.h>
#include <ckpt/layout.h>

#include "format/names.h"
#include "multiprocess/sharding.h"
#include "save/atomic_commit.h"
#include "value/utf8_checks.h"

namespace fs = std::filesystem;

namespace ckpt::internal {

fs::path normalized(const fs::path& path) {
  if (path.empty()) throw InvalidArgumentError("the checkpoint path is empty");
  fs::path p = fs::absolute(path).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();  // trailing slash
  return p;
}

CheckpointableRefs refs_of(const Checkpointables& checkpointables) {
  CheckpointableRefs refs;
  refs.reserve(checkpointables.size());
  for (const auto& [name, value] : checkpointables) {
    refs.emplace_back(name, &value);
  }
  return refs;
}

SaveItems items_to_save(const fs::path& path,
                        const CheckpointableRefs& checkpointables,
                        const SaveOptions& options) {
  if (checkpointables.empty()) {
    throw InvalidArgumentError("nothing to save to " + path.string() +
                               ": no checkpointables given");
  }
  if (!options.custom_metadata.is_object()) {
    throw InvalidArgumentError("custom_metadata must be a JSON object");
  }
  // Deeper documents could not be read back (and copying them recurses).
  auto check_depth = [&](size_t depth, const std::string& what) {
    if (depth > kMaxNestingDepth) {
      throw InvalidArgumentError(what + " nested deeper than " +
                                 std::to_string(kMaxNestingDepth) +
                                 " levels, more than a checkpoint may hold");
    }
  };
  check_depth(nesting_depth(options.custom_metadata), "custom_metadata");
  check_json_text(options.custom_metadata, "custom_metadata");
  if (options.metrics) {
    check_depth(nesting_depth(*options.metrics), "metrics");
    check_json_text(*options.metrics, "metrics");
  }
  for (size_t i = 0; i < checkpointables.size(); ++i) {
    const std::string& name = checkpointables[i].first;
    internal::check_checkpointable_name(name, false);
    check_depth(nesting_depth(*checkpointables[i].second),
                "checkpointable '" + name + "'");
    check_value_text(*checkpointables[i].second,
                     "checkpointable '" + name + "'");
    for (size_t j = 0; j < i; ++j) {
      if (name == checkpointables[j].first) {
        throw InvalidArgumentError("checkpointable '" + name +
                                   "' is given twice");
      }
    }
  }
  SaveItems items;
  items.owned.reserve(checkpointables.size() + 1);
  for (const auto& [name, value] : checkpointables) {
    items.names.push_back(name);
    if (internal::holds_sharded(*value)) {
      items.owned.emplace_back(name, *value);
      items.values.push_back(&items.owned.back().second);
    } else {
      items.values.push_back(value);
    }
  }
  if (options.metrics) {
    items.names.push_back(kMetricsName);
    items.owned.emplace_back(kMetricsName, Value::json(*options.metrics));
    items.values.push_back(&items.owned.back().second);
  }
  return items;
}

void check_destination(const fs::path& final_path, bool overwrite) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(final_path, ec))) return;
  if (!overwrite) {
    throw AlreadyExistsError("Destination " + final_path.string() +
                             " already exists; pass overwrite to replace it");
  }
  internal::check_replaceable(final_path);
}

}  // namespace ckpt::internal
