// Writes the seed corpora of the fuzz targets: saves real checkpoints
// (pytrees with own and packed arrays, scalars, strings, nested dicts and
// lists; json; proto; all of them at once with metrics) on /dev/shm and
// copies each file a target reads into <out>/<target>/. With a second
// argument, a folder of Orbax-written checkpoints (../shared/fixtures/orbax),
// adds a few of their _CHECKPOINT_METADATA and _METADATA files too, and the
// OCDBT and zarr files of their pytrees for the Orbax targets.
//
//   corpus_gen tests/fuzz/corpus [fixtures/orbax]      (tools/fuzz.sh --corpus)
//
// Every target's prepared checkpoint is made from the same samples, so the
// pytree seeds match the array file the pytree targets load.
#include <ckpt/checkpoint.h>
#include <ckpt/context.h>
#include <ckpt/layout.h>
#include <ckpt/proto.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "orbax/ocdbt_database.h"
#include "proto_sample.h"
#include "records/tree_index.h"

namespace {

using namespace ckpt_fuzz;

constexpr size_t kMaxSeed = 64 * 1024;

fs::path out_root;
int written = 0;

void seed(const std::string& target, const std::string& name,
          const std::string& bytes) {
  if (bytes.size() >= kMaxSeed) {
    throw std::runtime_error("seed " + target + "/" + name + " is " +
                             std::to_string(bytes.size()) +
                             " bytes, over the 64 KiB limit");
  }
  fs::create_directories(out_root / target);
  write_file(out_root / target / name, bytes);
  ++written;
}

void seed_file(const std::string& target, const std::string& name,
               const fs::path& file) {
  seed(target, name, read_file(file));
}

// _CHECKPOINT_METADATA without "ckpt_format_version": the no-checksums path.
std::string without_format_version(const std::string& text) {
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(text);
  j.erase("ckpt_format_version");
  return j.dump();
}

void checkpoint_seeds(const fs::path& checkpoint, const std::string& name) {
  const std::string metadata =
      read_file(checkpoint / ckpt::kCheckpointMetadataFile);
  seed("checkpoint_metadata_sealed", name, metadata);
  seed("checkpoint_metadata", name, without_format_version(metadata));
  seed_file("checksums", name, checkpoint / ckpt::kChecksumsFile);
}

// The record of `index` as _METADATA of format 2 (what ckpt wrote before
// the tree index, with every array's storage and checksum): the
// pytree_metadata_load target loads it without an index.
std::string as_format_2(const std::string& index) {
  ckpt::pytree::TreeMetadata tree =
      ckpt::pytree::decode_tree_index(index, "the saved _TREE_INDEX");
  tree.format = 2;
  return ckpt::pytree::format_tree_metadata(tree);
}

void pytree_seeds(const fs::path& checkpoint, const std::string& name) {
  const fs::path state = checkpoint / "state";
  seed_file("pytree_metadata", name, state / "_METADATA");
  seed("pytree_metadata_load", name,
       as_format_2(read_file(state / "_TREE_INDEX")));
  seed_file("pytree_tree_index", name, state / "_TREE_INDEX");
  seed_file("pytree_tree_index_load", name, state / "_TREE_INDEX");
  seed_file("pytree_arrays", name + ".h5", state / "arrays.h5");
}

// What a JSON file looks like: the type of its value `key` ("" for its
// top-level keys and the type of each value), or its bytes when it is no
// JSON object.
std::string shape_of(const std::string& bytes, const std::string& key) {
  nlohmann::json j = nlohmann::json::parse(bytes, nullptr, false);
  if (!j.is_object()) return bytes;
  if (!key.empty()) return j.contains(key) ? j[key].type_name() : "missing";
  std::string shape;
  for (const auto& [name, value] : j.items()) {
    shape += name + ":" + value.type_name() + ",";
  }
  return shape;
}

// Up to `count` files named `file_name` under `fixtures`, of distinct
// shapes (shape_of `key`), in path order, each as a seed of every target
// in `targets`.
void fixture_seeds(const fs::path& fixtures, const std::string& file_name,
                   const std::string& key, size_t count,
                   const std::vector<std::string>& targets) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(fixtures)) {
    if (entry.is_regular_file() && entry.path().filename() == file_name) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  std::set<std::string> seen;
  for (const fs::path& file : files) {
    if (seen.size() == count) break;
    std::string bytes = read_file(file);
    if (!seen.insert(shape_of(bytes, key)).second) continue;
    for (const std::string& target : targets) {
      seed(target, "orbax_" + std::to_string(seen.size()), bytes);
    }
  }
}

// The only file of `folder` (a B+tree node's d/).
fs::path only_file(const fs::path& folder) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(folder)) {
    files.push_back(entry.path());
  }
  if (files.size() != 1) {
    throw std::runtime_error(folder.string() + " holds " +
                             std::to_string(files.size()) + " files, not 1");
  }
  return files[0];
}

// orbax_format's seeds (each behind its selector byte) and orbax_load's:
// the files of a v1 pytree (zarr v3) and of a v0 one (zarr v2).
void orbax_seeds(const fs::path& fixtures) {
  const fs::path v1 = fixtures / "v1_checkpoints" / "composite_checkpoint" /
                      "checkpoint_metadata_present" /
                      "pytree_checkpointable_has_metadata" / "state";
  const fs::path v0 = fixtures / "v0_checkpoints" / "composite_checkpoint" /
                      "checkpoint_metadata_missing" /
                      "pytree_checkpointable_has_metadata" / "state";
  seed("orbax_format", "root_manifest",
       '\0' + read_file(v1 / "manifest.ocdbt"));
  seed("orbax_format", "process_manifest",
       '\0' + read_file(v1 / "ocdbt.process_0" / "manifest.ocdbt"));
  const std::string root_node = read_file(only_file(v1 / "d"));
  seed("orbax_format", "root_node", '\1' + root_node);
  seed("orbax_load", "root_node", root_node);
  const ckpt::pytree::ocdbt::Database zarr3(v1.string(), "v1 state");
  const ckpt::pytree::ocdbt::Database zarr2(v0.string(), "v0 state");
  auto value = [](const ckpt::pytree::ocdbt::Database& db,
                  const std::string& key) {
    auto at = db.find(key);
    if (!at) throw std::runtime_error("no key " + key);
    return db.read(*at);
  };
  seed("orbax_format", "zarr_a",
       '\2' + value(zarr3, "a/zarr.json") + '\0' + value(zarr3, "a/c/0"));
  seed("orbax_format", "zarr2_a",
       '\3' + value(zarr2, "a/.zarray") + '\0' + value(zarr2, "a/0"));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: %s OUT_FOLDER [ORBAX_FIXTURES]\n", argv[0]);
    return 2;
  }
  out_root = argv[1];
  try {
    const fs::path scratch = scratch_dir("corpus");

    const fs::path tree = scratch / "tree";
    save_sample(tree, {{"state", sample_tree()}});
    checkpoint_seeds(tree, "pytree");
    pytree_seeds(tree, "sample_tree");

    const fs::path small = scratch / "small";
    save_sample(small, {{"state", small_tree()}});
    pytree_seeds(small, "small_tree");

    const fs::path json = scratch / "json";
    save_sample(json, {{"notes", ckpt::Value::json(sample_json())}});
    seed_file("json_data", "sample", json / "notes" / "data.json");
    save_sample(json, {{"notes", ckpt::Value::json({{"lr", 0.1},
                                                    {"steps", 10},
                                                    {"tags", {"a", "b"}},
                                                    {"none", nullptr}})}});
    seed_file("json_data", "tree", json / "notes" / "data.json");
    save_sample(json, {{"notes", ckpt::Value::json({1, -2.5e-300, "x"})}});
    seed_file("json_data", "list", json / "notes" / "data.json");

    const fs::path proto = scratch / "proto";
    save_sample(proto, {{"config", ckpt::proto_value(sample_config())}});
    seed_file("proto_pbtxt", "sample_config", proto / "config" / "proto.pbtxt");
    save_sample(proto, {{"config", ckpt::proto_value(small_config())}});
    seed_file("proto_pbtxt", "small_config", proto / "config" / "proto.pbtxt");

    // Everything at once, with metrics and custom metadata.
    const fs::path all = scratch / "all";
    ckpt::SaveOptions options;
    options.overwrite = true;
    options.metrics = {{"loss", 0.25}, {"accuracy", 0.875}};
    options.custom_metadata = {{"run", "seven"}, {"tags", {"a", "b"}}};
    {
      ckpt::ContextOptions context_options;
      context_options.fsync = false;
      ckpt::Context context(context_options);
      ckpt::save_checkpointables(
          all,
          {{"params", small_tree()},
           {"notes", ckpt::Value::json(sample_json())},
           {"config", ckpt::proto_value(small_config())}},
          options);
    }
    checkpoint_seeds(all, "composite");
    checkpoint_seeds(json, "json");

    if (argc == 3) {
      // item_handlers: an object (v1), a string (v0 flat), missing.
      fixture_seeds(argv[2], ckpt::kCheckpointMetadataFile, "item_handlers", 3,
                    {"checkpoint_metadata"});
      fixture_seeds(argv[2], "_METADATA", "", 2, {"pytree_metadata"});
      orbax_seeds(argv[2]);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "corpus_gen: %s\n", e.what());
    return 1;
  }
  std::printf("corpus_gen: %d seeds in %s\n", written, out_root.c_str());
  return 0;
}
