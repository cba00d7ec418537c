#include "load_arrays.h"

#include <ckpt/sdk/error.h>
#include <ckpt/sdk/value.h>
#include <xxhash.h>

#include <iterator>
#include <map>

#include "buffers.h"
#include "cast.h"
#include "dtypes.h"
#include "hdf5_file.h"
#include "side_worker.h"

namespace ckpt_pytree {

namespace {

using ckpt::sdk::Error;

// Where one planned array's saved bytes land.
struct Landing {
  void* data = nullptr;
  std::shared_ptr<void> owner;
};

// Packed datasets whose every array is requested as saved are read in one
// piece; the arrays then alias slices of it.
std::map<std::string, uint64_t> fully_requested_packs(const LoadPlan& plan) {
  std::map<std::string, uint64_t> total, requested;
  for (const LeafRecord& leaf : plan.saved.leaves) {
    if (leaf.kind == LeafKind::kArray && leaf.location.packed) {
      total[leaf.location.dataset] += element_count(leaf.shape);
    }
  }
  for (const ArrayLoad& a : plan.arrays) {
    const LeafRecord& leaf = plan.saved.leaves[a.leaf];
    bool as_saved =
        a.dtype == leaf.dtype && a.shape == leaf.shape && !a.caller_buffer;
    if (leaf.location.packed && as_saved) {
      requested[leaf.location.dataset] += element_count(leaf.shape);
    }
  }
  std::map<std::string, uint64_t> whole;
  for (const auto& [dataset, n] : requested) {
    if (n == total[dataset]) whole[dataset] = n;
  }
  return whole;
}

}  // namespace

uint64_t checksum(const void* data, uint64_t nbytes) {
  return XXH3_64bits(data, static_cast<size_t>(nbytes));
}

void load_arrays(LoadPlan& plan, const std::string& array_file,
                 bool verify_checksums,
                 const std::shared_ptr<void>& caller_memory,
                 const std::string& what) {
  std::vector<Landing> landing(plan.arrays.size());
  std::vector<ArrayToRead> reads;
  std::vector<std::vector<size_t>> arrays_of_read;  // plan arrays per read
  std::map<std::string, uint64_t> whole = fully_requested_packs(plan);
  std::map<std::string, std::shared_ptr<void>> pack_memory;
  for (const auto& [dataset, elements] : whole) {
    const LeafRecord* any = nullptr;
    for (const ArrayLoad& a : plan.arrays) {
      const LeafRecord& leaf = plan.saved.leaves[a.leaf];
      if (leaf.location.dataset == dataset) any = &leaf;
    }
    auto memory = allocate_buffer(elements * ckpt::sdk::dtype_size(any->dtype));
    ArrayToRead r;
    r.dataset = dataset;
    r.dtype = any->dtype;
    r.packed = true;
    r.count = elements;
    r.destination = memory.get();
    r.key_path = "(packed " + dtype_name(any->dtype) + " arrays)";
    reads.push_back(std::move(r));
    arrays_of_read.emplace_back();
    pack_memory[dataset] = std::move(memory);
  }
  for (size_t i = 0; i < plan.arrays.size(); ++i) {
    const ArrayLoad& a = plan.arrays[i];
    const LeafRecord& leaf = plan.saved.leaves[a.leaf];
    uint64_t count = element_count(leaf.shape);
    size_t item = ckpt::sdk::dtype_size(leaf.dtype);
    auto pack = pack_memory.find(leaf.location.dataset);
    if (leaf.location.packed && pack != pack_memory.end()) {
      landing[i].owner = pack->second;
      landing[i].data =
          static_cast<char*>(pack->second.get()) + leaf.location.offset * item;
      size_t read =
          static_cast<size_t>(std::distance(pack_memory.begin(), pack));
      arrays_of_read[read].push_back(i);
      continue;
    }
    bool in_place =
        a.caller_buffer && a.dtype == leaf.dtype && a.shape == leaf.shape;
    if (in_place) {
      landing[i].data = a.caller_buffer;
      landing[i].owner = caller_memory;
    } else {
      landing[i].owner = allocate_buffer(count * item);
      landing[i].data = landing[i].owner.get();
    }
    ArrayToRead r;
    r.dataset = leaf.location.dataset;
    r.dtype = leaf.dtype;
    r.dims = leaf.shape;
    r.packed = leaf.location.packed;
    r.offset = leaf.location.offset;
    r.count = count;
    r.destination = landing[i].data;
    r.key_path = key_path_repr(leaf.path);
    reads.push_back(std::move(r));
    arrays_of_read.push_back({i});
  }

  // Checksums are verified on a second thread as each read completes.
  SideWorker verifier;
  auto verify = [&](size_t read) {
    for (size_t i : arrays_of_read[read]) {
      const LeafRecord& leaf = plan.saved.leaves[plan.arrays[i].leaf];
      uint64_t nbytes =
          element_count(leaf.shape) * ckpt::sdk::dtype_size(leaf.dtype);
      if (leaf.has_checksum && checksum(landing[i].data, nbytes) != leaf.xxh3) {
        throw Error(CKPT_ERROR_DATA_LOSS,
                    what + ": key path " + key_path_repr(leaf.path) +
                        ": checksum mismatch (dataset " +
                        leaf.location.dataset + " in " + array_file +
                        "): the array data is corrupted");
      }
    }
  };
  std::function<void(size_t)> on_read;
  if (verify_checksums) {
    on_read = [&](size_t read) {
      verifier.submit([&verify, read] { verify(read); });
    };
  }
  read_array_file(array_file, reads, what, on_read);
  verifier.finish();

  std::vector<OutNode*> nodes(plan.arrays.size(), nullptr);
  std::vector<OutNode*> stack = {plan.root.get()};
  while (!stack.empty()) {
    OutNode* n = stack.back();
    stack.pop_back();
    if (n->array >= 0) nodes[static_cast<size_t>(n->array)] = n;
    for (auto& child : n->children) stack.push_back(child.get());
  }

  for (size_t i = 0; i < plan.arrays.size(); ++i) {
    const ArrayLoad& a = plan.arrays[i];
    const LeafRecord& leaf = plan.saved.leaves[a.leaf];
    uint64_t count = element_count(leaf.shape);
    Landing land = landing[i];
    bool final_is_caller = a.caller_buffer != nullptr;
    if (a.dtype != leaf.dtype) {
      Landing cast;
      bool direct = final_is_caller && a.shape == leaf.shape;
      if (direct) {
        cast.data = a.caller_buffer;
        cast.owner = caller_memory;
      } else {
        cast.owner = allocate_buffer(count * ckpt::sdk::dtype_size(a.dtype));
        cast.data = cast.owner.get();
      }
      cast_elements(leaf.dtype, land.data, a.dtype, cast.data, count);
      land = cast;
    }
    if (a.shape != leaf.shape) {
      Landing fitted;
      if (final_is_caller) {
        fitted.data = a.caller_buffer;
        fitted.owner = caller_memory;
      } else {
        fitted.owner = allocate_buffer(element_count(a.shape) *
                                       ckpt::sdk::dtype_size(a.dtype));
        fitted.data = fitted.owner.get();
      }
      fit_to_shape(land.data, leaf.shape, fitted.data, a.shape,
                   ckpt::sdk::dtype_size(a.dtype));
      land = fitted;
    }
    nodes[i]->value =
        ckpt::sdk::OutValue::array(a.dtype, a.shape, land.data, land.owner);
  }
}

}  // namespace ckpt_pytree
