// `ckpt cat DIR NAME[/key/path]`: one checkpointable (or one subtree of
// it) printed for people, or as JSON.
#include <ckpt/checkpoint.h>
#include <ckpt/errors.h>
#include <ckpt/sdk/files.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <system_error>
#include <vector>

#include "commands.h"
#include "format.h"
#include "host_types.h"

namespace ckpt::tool {

namespace {

// Walks `key_path` ("a/b/0") down a tree.
const Value& descend(const Value& root, const std::string& key_path,
                     const std::string& what) {
  const Value* node = &root;
  size_t start = 0;
  while (start < key_path.size()) {
    size_t end = key_path.find('/', start);
    if (end == std::string::npos) end = key_path.size();
    const std::string key = key_path.substr(start, end - start);
    if (node->kind() == Value::Kind::kDict) {
      node = node->find(key);
    } else if (node->kind() == Value::Kind::kList) {
      char* rest = nullptr;
      unsigned long index = std::strtoul(key.c_str(), &rest, 10);
      node = (!key.empty() && *rest == '\0' && index < node->size())
                 ? &node->as_list()[index]
                 : nullptr;
    } else {
      node = nullptr;
    }
    if (!node) throw NotFoundError("no key path '" + key_path + "' in " + what);
    start = end + 1;
  }
  return *node;
}

// Prints the regular files of `folder`, each after a "# name" line. Other
// entries are named but not opened: a symbolic link is not followed, a
// FIFO not waited on.
int print_files(const std::filesystem::path& folder) {
  std::vector<std::filesystem::directory_entry> entries(
      std::filesystem::directory_iterator(folder), {});
  std::sort(entries.begin(), entries.end());
  for (const auto& entry : entries) {
    const std::string name = entry.path().filename().string();
    std::error_code ec;
    if (entry.symlink_status(ec).type() ==
        std::filesystem::file_type::directory) {
      continue;
    }
    std::string text;
    try {
      if (!sdk::read_file_if_exists(entry.path().string(), text)) continue;
    } catch (const sdk::Error& e) {
      std::cout << "# " << name << ": not shown (" << e.what() << ")\n";
      continue;
    }
    std::cout << "# " << name << "\n" << text;
  }
  return 0;
}

}  // namespace

int run_cat(const Common& common, const std::string& dir,
            const std::string& target, bool full) {
  const size_t slash = target.find('/');
  const std::string name = target.substr(0, slash);
  const std::string key_path =
      slash == std::string::npos ? "" : target.substr(slash + 1);
  const CheckpointInfo info = read_checkpoint_info(dir);
  if (key_path.empty() && !common.json &&
      !needs_host_type(info, name).empty()) {
    // Only the host app can load it (e.g. protobuf text format needs the
    // message type): show its files as written.
    return print_files(info.path / name);
  }
  Value value = load_checkpointables(dir, {{name, Value()}})[0].second;
  const Value& shown =
      descend(value, key_path, "checkpointable '" + name + "'");
  if (common.json) {
    write_json(std::cout, shown);
    return 0;
  }
  switch (shown.kind()) {
    case Value::Kind::kJson:
      std::cout << shown.as_json().dump(2) << "\n";
      break;
    case Value::Kind::kArray:
      std::cout << array_text(shown.as_array(), full) << "\n";
      break;
    default:
      std::cout << tree_text(shown, full);
  }
  return 0;
}

}  // namespace ckpt::tool
