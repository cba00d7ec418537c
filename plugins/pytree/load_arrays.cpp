#include "load_arrays.h"

#include <ckpt/sdk/error.h>
#include <ckpt/sdk/value.h>
#include <xxhash.h>

#include <map>
#include <new>

#include "cast.h"
#include "dtypes.h"
#include "hdf5_file.h"

namespace ckpt_pytree {

namespace {

using ckpt::sdk::Error;

std::shared_ptr<void> allocate(uint64_t nbytes) {
  void* p = ::operator new(static_cast<size_t>(nbytes == 0 ? 1 : nbytes));
  return std::shared_ptr<void>(p, [](void* q) { ::operator delete(q); });
}

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
    bool as_saved = a.dtype == leaf.dtype && a.shape == leaf.shape && !a.caller_buffer;
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
                 bool verify_checksums, const std::shared_ptr<void>& caller_memory,
                 const std::string& what) {
  std::vector<Landing> landing(plan.arrays.size());
  std::vector<ArrayToRead> reads;
  std::map<std::string, uint64_t> whole = fully_requested_packs(plan);
  std::map<std::string, std::shared_ptr<void>> pack_memory;
  for (const auto& [dataset, elements] : whole) {
    const LeafRecord* any = nullptr;
    for (const ArrayLoad& a : plan.arrays) {
      const LeafRecord& leaf = plan.saved.leaves[a.leaf];
      if (leaf.location.dataset == dataset) any = &leaf;
    }
    auto memory = allocate(elements * ckpt::sdk::dtype_size(any->dtype));
    ArrayToRead r;
    r.dataset = dataset;
    r.dtype = any->dtype;
    r.packed = true;
    r.count = elements;
    r.destination = memory.get();
    r.key_path = "(packed " + dtype_name(any->dtype) + " arrays)";
    reads.push_back(std::move(r));
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
      landing[i].data = static_cast<char*>(pack->second.get()) + leaf.location.offset * item;
      continue;
    }
    bool in_place = a.caller_buffer && a.dtype == leaf.dtype && a.shape == leaf.shape;
    if (in_place) {
      landing[i].data = a.caller_buffer;
      landing[i].owner = caller_memory;
    } else {
      landing[i].owner = allocate(count * item);
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
  }

  read_array_file(array_file, reads, what);

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
    if (verify_checksums && leaf.has_checksum &&
        checksum(land.data, count * ckpt::sdk::dtype_size(leaf.dtype)) != leaf.xxh3) {
      throw Error(CKPT_ERROR_DATA_LOSS,
                  what + ": key path " + key_path_repr(leaf.path) +
                      ": checksum mismatch (dataset " + leaf.location.dataset +
                      " in " + array_file + "): the array data is corrupted");
    }
    bool final_is_caller = a.caller_buffer != nullptr;
    if (a.dtype != leaf.dtype) {
      Landing cast;
      bool direct = final_is_caller && a.shape == leaf.shape;
      if (direct) {
        cast.data = a.caller_buffer;
        cast.owner = caller_memory;
      } else {
        cast.owner = allocate(count * ckpt::sdk::dtype_size(a.dtype));
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
        fitted.owner = allocate(element_count(a.shape) * ckpt::sdk::dtype_size(a.dtype));
        fitted.data = fitted.owner.get();
      }
      fit_to_shape(land.data, leaf.shape, fitted.data, a.shape,
                   ckpt::sdk::dtype_size(a.dtype));
      land = fitted;
    }
    nodes[i]->value = ckpt::sdk::OutValue::array(a.dtype, a.shape, land.data, land.owner);
  }
}

}  // namespace ckpt_pytree
