// The pytree plugin: trees of arrays, scalars and strings as _METADATA (in
// Orbax's shape) plus one HDF5 file of arrays. Registers the pytree handler
// generally and scoped to `state`, with Orbax's pytree typestrs as
// secondary typestrs. See README.md for the on-disk format.
#include <ckpt/sdk/files.h>
#include <ckpt/sdk/plugin.h>
#include <hdf5.h>

#include <algorithm>
#include <string>

#include "hdf5/array_file.h"
#include "load/load_arrays.h"
#include "load/load_plan.h"
#include "orbax/orbax_storage.h"
#include "orbax/orbax_writer.h"
#include "records/tree_index.h"
#include "records/tree_metadata.h"
#include "runtime/options.h"
#include "runtime/side_worker.h"
#include "save/snapshot.h"
#include "tree/cast.h"
#include "tree/dtypes.h"

namespace ckpt::pytree {
namespace {

using ckpt::sdk::Error;

constexpr const char* kTypestr = "ckpt.pytree.PyTreeHandler";

std::string describe(const ckpt::sdk::Call& call) {
  return "pytree checkpointable '" + call.checkpointable_name + "'";
}

TreeMetadata read_tree_metadata(const ckpt::sdk::Call& call) {
  return read_saved_tree(call.directory, kMetadataFile, describe(call));
}

// Arrays in a format neither ckpt's HDF5 layout nor Orbax's cannot be
// read here.
void require_readable_format(const TreeMetadata& saved,
                             const std::string& what) {
  if (is_ckpt_storage_format(saved.storage_format) ||
      is_orbax_storage_format(saved.storage_format)) {
    return;
  }
  throw Error(CKPT_ERROR_UNIMPLEMENTED,
              what + ": storage format '" + saved.storage_format +
                  "' is not supported (the pytree handler reads '" +
                  kStorageFormat +
                  "' and Python Orbax's zarr arrays, with or without OCDBT)");
}

// Array specs, scalar kinds, placeholders and concrete leaves.
bool is_abstract_leaf(const ckpt_value& v) {
  switch (v.kind) {
    case CKPT_VALUE_ARRAY_SPEC:
      return v.array != nullptr;
    case CKPT_VALUE_SCALAR_SPEC:
    case CKPT_VALUE_PLACEHOLDER:
    case CKPT_VALUE_ARRAY:
      return true;
    default:
      return ckpt::sdk::is_plain_tree(v);
  }
}

class PyTreeHandler final : public ckpt::sdk::Handler {
 public:
  explicit PyTreeHandler(const std::string& config_json) {
    // An instance configuration holds defaults for the Context's handler
    // options, in the same shape: {"pytree": {...}}.
    config_ = parse_options(config_json);
  }

  bool is_handleable(const ckpt_value& value) override {
    return is_supported_tree(value);
  }

  ckpt_answer is_abstract_handleable(
      const ckpt_value& abstract_value) override {
    return every_leaf(abstract_value, is_abstract_leaf) ? CKPT_ANSWER_YES
                                                        : CKPT_ANSWER_NO;
  }

  ckpt::sdk::SaveWork save(const ckpt::sdk::Call& call, const ckpt_value& value,
                           ckpt::sdk::RetainedValue retained) override {
    // Many processes: plain arrays are the same on every process
    // (replicated), so the primary host alone writes them, as Orbax does;
    // each process writes the pieces of sharded arrays placed on it.
    // Orbax's storage ("storage": "orbax") gives every array its own zarr
    // array (nothing packed); each process writes its own sub-database,
    // and finalize_save the root database over them all.
    PyTreeOptions options = options_for(call);
    std::string what = describe(call);
    if (options.orbax_storage) require_finalize_of_many(call, what);
    auto snapshot = std::make_shared<Snapshot>(take_snapshot(
        value, options.orbax_storage ? 0 : options.pack_threshold_bytes,
        call.process_index, call.is_primary_host, what));
    if (options.orbax_storage) check_orbax_names(*snapshot, what);
    if (!call.is_primary_host && !snapshot->pieces) return nullptr;
    if (!snapshot->references_caller_memory &&
        !(snapshot->pieces && snapshot->pieces->references_caller_memory)) {
      retained = ckpt::sdk::RetainedValue();
    }
    return [call, options, what, snapshot, retained = std::move(retained)] {
      if (options.orbax_storage) {
        write_orbax_pytree(call, *snapshot, options.orbax, what);
        return;
      }
      if (snapshot->pieces) {
        write_tree_files(call, options, what, *snapshot->pieces,
                         process_array_file(call.process_index),
                         process_metadata_file(call.process_index));
      }
      if (call.is_primary_host) {
        write_tree_files(call, options, what, *snapshot, kArrayFile,
                         kMetadataFile);
      }
    };
  }

  void finalize_save(const ckpt::sdk::Call& call) override {
    if (call.process_count > 1 && options_for(call).orbax_storage) {
      merge_orbax_databases(call, describe(call));
    }
  }

  ckpt::sdk::LoadWork load(const ckpt::sdk::Call& call,
                           const ckpt_value* abstract_value,
                           ckpt::sdk::RetainedValue retained) override {
    PyTreeOptions options = options_for(call);
    std::string what = describe(call);
    TreeMetadata saved = read_tree_metadata(call);
    require_readable_format(saved, what);
    // The array files are plain names (parse_tree_metadata checked)
    // inside the checkpointable's folder.
    std::string directory = call.directory;
    // Python Orbax's arrays: their dtypes and shapes, and the values of its
    // scalars and strings, are in its storage, read here.
    std::shared_ptr<OrbaxStorage> orbax;
    if (!is_ckpt_storage_format(saved.storage_format)) {
      orbax = std::make_shared<OrbaxStorage>(directory, saved, what);
      orbax->describe(saved);
      orbax->read_values(saved);
    }
    auto plan = std::make_shared<LoadPlan>(
        plan_load(std::move(saved), abstract_value, options.load, what));
    auto caller_memory =
        std::make_shared<ckpt::sdk::RetainedValue>(std::move(retained));
    return [plan, directory, options, what, caller_memory, orbax]() mutable {
      if (orbax) {
        load_orbax_arrays(*plan, *orbax, caller_memory, what);
        orbax.reset();
      } else {
        load_arrays(*plan, directory, options.verify_checksums, caller_memory,
                    what);
      }
      // The records go before the tree is built, the plan before it is
      // frozen for the host: a tree of many leaves is not held twice.
      plan->saved = TreeMetadata();
      ckpt::sdk::OutValue out = to_out_value(*plan->root, plan->arrays);
      plan.reset();
      return out;
    };
  }

  ckpt::sdk::OutValue metadata(const ckpt::sdk::Call& call) override {
    TreeMetadata saved = read_tree_metadata(call);
    const std::string what = describe(call);
    if (!is_ckpt_storage_format(saved.storage_format)) {
      // Orbax's: each array's dtype and shape from its zarr.json where it
      // can be read; where not (a damaged or unread storage), _METADATA's
      // write_shape and an unknown dtype.
      try {
        OrbaxStorage orbax(call.directory, saved, what);
        for (LeafRecord& leaf : saved.leaves) orbax.try_describe(leaf);
      } catch (const Error& e) {
        ckpt::sdk::log(
            CKPT_LOG_DEBUG,
            std::string("metadata without array storage: ") + e.what());
      }
    }
    return abstract_tree(saved, what);
  }

 private:
  // Orbax's storage has one root database over every process's chunks,
  // which finalize_save writes once all processes wrote theirs: a host
  // older than ABI 1.4 never calls it.
  static void require_finalize_of_many(const ckpt::sdk::Call& call,
                                       const std::string& what) {
    if (call.process_count <= 1 || ckpt::sdk::host_abi_minor() >= 4) return;
    throw Error(CKPT_ERROR_UNIMPLEMENTED,
                what +
                    ": \"storage\": \"orbax\" by many processes needs a "
                    "ckpt core of ABI 1.4 or later (this one is 1." +
                    std::to_string(ckpt::sdk::host_abi_minor()) +
                    "): save in ckpt's storage and `ckpt convert --to "
                    "orbax` it");
  }

  PyTreeOptions options_for(const ckpt::sdk::Call& call) const {
    return parse_options(call.options_json, config_);
  }

  // Writes the array file `array_file` and the tree metadata
  // `metadata_file` of `snapshot` into the checkpointable's folder: a
  // sharded array becomes a virtual dataset over its pieces' files.
  static void write_tree_files(const ckpt::sdk::Call& call,
                               const PyTreeOptions& options,
                               const std::string& what, Snapshot& snapshot,
                               const std::string& array_file,
                               const std::string& metadata_file) {
    std::vector<DatasetToWrite> datasets;
    std::vector<IndexRow> index;
    snapshot.metadata.array_file = array_file;
    // Checksums and the _METADATA text are made on a second thread while
    // the array file is written.
    std::string metadata_text;  // declared first: outlives the worker
    snapshot.metadata.format = kPyTreeFormat;
    snapshot.metadata.has_structure = false;  // set once the file is written
    SideWorker hasher;
    hasher.submit([&snapshot, &metadata_text] {
      for (const ArrayBytes& bytes : snapshot.arrays) {
        LeafRecord& leaf = snapshot.metadata.leaves[bytes.leaf];
        leaf.xxh3 = checksum(bytes.data, bytes.nbytes);
        leaf.has_checksum = true;
      }
      metadata_text = format_tree_metadata_body(snapshot.metadata);
    });
    for (const ArrayBytes& bytes : snapshot.arrays) {
      const LeafRecord& leaf = snapshot.metadata.leaves[bytes.leaf];
      index.push_back(index_row(
          leaf, leaf.location.offset,
          bytes.nbytes /
              std::max<size_t>(1, ckpt::sdk::dtype_size(leaf.dtype))));
      if (!leaf.location.packed) {
        datasets.push_back({leaf.location.dataset,
                            leaf.dtype,
                            leaf.shape,
                            bytes.data,
                            bytes.nbytes,
                            {},
                            true,
                            {}});
      }
    }
    for (const LeafRecord& leaf : snapshot.metadata.leaves) {
      if (!leaf.sharded) continue;
      datasets.push_back(virtual_dataset(leaf));
      index.push_back(
          index_row(leaf, leaf.location.offset, element_count(leaf.shape)));
    }
    for (const auto& [dtype, pack] : snapshot.packs) {
      uint64_t nbytes = pack.elements * ckpt::sdk::dtype_size(dtype);
      datasets.push_back({packed_dataset(dtype),
                          dtype,
                          {static_cast<int64_t>(pack.elements)},
                          pack.memory.get(),
                          nbytes,
                          {},
                          false,
                          {}});
      datasets.back().pieces = pack.pieces;
    }
    ArrayFileStructure structure = write_array_file(
        ckpt::sdk::join_path(call.directory, array_file), datasets, index,
        options.storage, call.file_mode, what);
    hasher.finish();
    snapshot.metadata.has_structure = true;
    snapshot.metadata.structure = std::move(structure);
    metadata_text += format_tree_metadata_end(snapshot.metadata);
    ckpt::sdk::write_file(ckpt::sdk::join_path(call.directory, metadata_file),
                          metadata_text, call.file_mode);
    ckpt::sdk::write_file(
        ckpt::sdk::join_path(call.directory, tree_index_file(metadata_file)),
        encode_tree_index(snapshot.metadata), call.file_mode);
  }

  static IndexRow index_row(const LeafRecord& leaf, uint64_t offset,
                            uint64_t count) {
    IndexRow row;
    row.key = hdf5_path(leaf.path).substr(1);
    row.dtype = leaf.dtype;
    row.packed = leaf.location.packed;
    row.offset = offset;
    row.count = count;
    row.shape = leaf.shape;
    return row;
  }

  // The virtual dataset of sharded array `leaf` in arrays.h5: each piece
  // maps the dataset of its process's file (a name relative to arrays.h5).
  static DatasetToWrite virtual_dataset(const LeafRecord& leaf) {
    DatasetToWrite ds;
    ds.path = leaf.location.dataset;
    ds.dtype = leaf.dtype;
    ds.dims = leaf.shape;
    for (size_t k = 0; k < leaf.pieces.size(); ++k) {
      const StoredPiece& p = leaf.pieces[k];
      ds.sources.push_back({process_array_file(p.process),
                            hdf5_path(piece_path(leaf.path, k)), p.offset,
                            p.shape});
    }
    return ds;
  }

  PyTreeOptions config_;
};

}  // namespace
}  // namespace ckpt::pytree

CKPT_PLUGIN("pytree", registrar) {
  // HDF5 closes every file still open when the process exits. A file whose
  // close failed (a full disk) stays half-closed, and closing it again there
  // crashes inside HDF5; the plugin closes its files itself, so HDF5's exit
  // hook has nothing to do. A no-op when the host already started HDF5.
  H5dont_atexit();
  registrar.handler_type<ckpt::pytree::PyTreeHandler>(
      ckpt::pytree::kTypestr,
      {"orbax.checkpoint.experimental.v1._src.handlers.pytree_handler."
       "PyTreeHandler",
       "orbax.checkpoint._src.handlers.pytree_checkpoint_handler."
       "PyTreeCheckpointHandler",
       "orbax.checkpoint._src.handlers.standard_checkpoint_handler."
       "StandardCheckpointHandler"},
      "trees of arrays (sharded too), scalars and strings as _METADATA + "
      "arrays.h5 (HDF5)",
      0,
      // Checked by the handler on every load (per-array xxh3 and the
      // structure checksum in _METADATA, and in _METADATA.process_<p> for
      // the per-process piece files): the core records only their size, so
      // that a partial load hashes only the arrays it reads.
      {ckpt::pytree::kArrayFile}, {ckpt::pytree::kProcessArrayPrefix});
  registrar.registration(ckpt::pytree::kTypestr);
  registrar.registration(ckpt::pytree::kTypestr, "state");
}
