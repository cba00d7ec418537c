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

// The reads of a load and where their bytes land.
struct ReadSchedule {
  std::vector<Landing> landing;  // per plan array
  std::vector<ArrayToRead> reads;
  std::vector<std::vector<size_t>> arrays_of_read;  // plan arrays per read
};

// Schedules reading the packed `dataset` (`elements` long) in one piece into
// fresh memory, which it returns; its arrays are not yet attached.
std::shared_ptr<void> schedule_whole_pack(const LoadPlan& plan,
                                          const std::string& dataset,
                                          uint64_t elements,
                                          ReadSchedule& schedule) {
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
  schedule.reads.push_back(std::move(r));
  schedule.arrays_of_read.emplace_back();
  return memory;
}

// Lands plan array `i` in its slice of `pack`, the memory of read `read`.
void land_in_pack(const LoadPlan& plan, size_t i,
                  const std::shared_ptr<void>& pack, size_t read,
                  ReadSchedule& schedule) {
  const LeafRecord& leaf = plan.saved.leaves[plan.arrays[i].leaf];
  size_t item = ckpt::sdk::dtype_size(leaf.dtype);
  schedule.landing[i].owner = pack;
  schedule.landing[i].data =
      static_cast<char*>(pack.get()) + leaf.location.offset * item;
  schedule.arrays_of_read[read].push_back(i);
}

// Schedules a read of plan array `i` alone: into the caller's buffer when it
// is requested as saved, else into fresh memory.
void schedule_own_read(const LoadPlan& plan, size_t i,
                       const std::shared_ptr<void>& caller_memory,
                       ReadSchedule& schedule) {
  const ArrayLoad& a = plan.arrays[i];
  const LeafRecord& leaf = plan.saved.leaves[a.leaf];
  uint64_t count = element_count(leaf.shape);
  size_t item = ckpt::sdk::dtype_size(leaf.dtype);
  Landing& landing = schedule.landing[i];
  bool in_place =
      a.caller_buffer && a.dtype == leaf.dtype && a.shape == leaf.shape;
  if (in_place) {
    landing.data = a.caller_buffer;
    landing.owner = caller_memory;
  } else {
    landing.owner = allocate_buffer(count * item);
    landing.data = landing.owner.get();
  }
  ArrayToRead r;
  r.dataset = leaf.location.dataset;
  r.dtype = leaf.dtype;
  r.dims = leaf.shape;
  r.packed = leaf.location.packed;
  r.offset = leaf.location.offset;
  r.count = count;
  r.destination = landing.data;
  r.key_path = key_path_repr(leaf.path);
  schedule.reads.push_back(std::move(r));
  schedule.arrays_of_read.push_back({i});
}

// Decides every read of `plan`: fully requested packs first, in one piece
// each, then every array not in one of them on its own.
ReadSchedule schedule_reads(const LoadPlan& plan,
                            const std::shared_ptr<void>& caller_memory) {
  ReadSchedule schedule;
  schedule.landing.resize(plan.arrays.size());
  // Same keys and order as fully_requested_packs(), so a pack's position in
  // this map is the index of its read.
  std::map<std::string, std::shared_ptr<void>> pack_memory;
  for (const auto& [dataset, elements] : fully_requested_packs(plan)) {
    pack_memory[dataset] =
        schedule_whole_pack(plan, dataset, elements, schedule);
  }
  for (size_t i = 0; i < plan.arrays.size(); ++i) {
    const LeafRecord& leaf = plan.saved.leaves[plan.arrays[i].leaf];
    auto pack = pack_memory.find(leaf.location.dataset);
    if (leaf.location.packed && pack != pack_memory.end()) {
      size_t read =
          static_cast<size_t>(std::distance(pack_memory.begin(), pack));
      land_in_pack(plan, i, pack->second, read, schedule);
    } else {
      schedule_own_read(plan, i, caller_memory, schedule);
    }
  }
  return schedule;
}

// Throws DATA_LOSS naming `what` when an array that read `read` filled does
// not match its recorded checksum.
void verify_read(const LoadPlan& plan, const ReadSchedule& schedule,
                 size_t read, const std::string& array_file,
                 const std::string& what) {
  for (size_t i : schedule.arrays_of_read[read]) {
    const LeafRecord& leaf = plan.saved.leaves[plan.arrays[i].leaf];
    uint64_t nbytes =
        element_count(leaf.shape) * ckpt::sdk::dtype_size(leaf.dtype);
    if (leaf.has_checksum &&
        checksum(schedule.landing[i].data, nbytes) != leaf.xxh3) {
      throw Error(CKPT_ERROR_DATA_LOSS,
                  what + ": key path " + key_path_repr(leaf.path) +
                      ": checksum mismatch (dataset " + leaf.location.dataset +
                      " in " + array_file + "): the array data is corrupted");
    }
  }
}

// Performs the reads of `schedule`, verifying checksums when asked.
void read_and_verify(const LoadPlan& plan, const ReadSchedule& schedule,
                     const std::string& array_file, bool verify_checksums,
                     const std::string& what) {
  // Checksums are verified on a second thread as each read completes.
  SideWorker verifier;
  std::function<void(size_t)> on_read;
  if (verify_checksums) {
    on_read = [&](size_t read) {
      verifier.submit([&plan, &schedule, &array_file, &what, read] {
        verify_read(plan, schedule, read, array_file, what);
      });
    };
  }
  read_array_file(array_file, schedule.reads, what, on_read);
  verifier.finish();
}

// The output node of each plan array, by array index.
std::vector<OutNode*> array_nodes(LoadPlan& plan) {
  std::vector<OutNode*> nodes(plan.arrays.size(), nullptr);
  std::vector<OutNode*> stack = {plan.root.get()};
  while (!stack.empty()) {
    OutNode* n = stack.back();
    stack.pop_back();
    if (n->array >= 0) nodes[static_cast<size_t>(n->array)] = n;
    for (auto& child : n->children) stack.push_back(child.get());
  }
  return nodes;
}

// Where a conversion of `a` writes: the caller's buffer when `to_caller`,
// else fresh memory of `nbytes`.
Landing conversion_target(bool to_caller, const ArrayLoad& a,
                          const std::shared_ptr<void>& caller_memory,
                          uint64_t nbytes) {
  Landing target;
  if (to_caller) {
    target.data = a.caller_buffer;
    target.owner = caller_memory;
  } else {
    target.owner = allocate_buffer(nbytes);
    target.data = target.owner.get();
  }
  return target;
}

// Array `a` as requested: `land` (its bytes as saved in `leaf`) cast to the
// requested dtype, then padded or truncated to the requested shape. The
// last step writes into the caller's buffer when there is one.
Landing convert(const ArrayLoad& a, const LeafRecord& leaf, Landing land,
                const std::shared_ptr<void>& caller_memory) {
  uint64_t count = element_count(leaf.shape);
  bool final_is_caller = a.caller_buffer != nullptr;
  if (a.dtype != leaf.dtype) {
    bool direct = final_is_caller && a.shape == leaf.shape;
    Landing cast = conversion_target(direct, a, caller_memory,
                                     count * ckpt::sdk::dtype_size(a.dtype));
    cast_elements(leaf.dtype, land.data, a.dtype, cast.data, count);
    land = cast;
  }
  if (a.shape != leaf.shape) {
    Landing fitted = conversion_target(
        final_is_caller, a, caller_memory,
        element_count(a.shape) * ckpt::sdk::dtype_size(a.dtype));
    fit_to_shape(land.data, leaf.shape, fitted.data, a.shape,
                 ckpt::sdk::dtype_size(a.dtype));
    land = fitted;
  }
  return land;
}

}  // namespace

uint64_t checksum(const void* data, uint64_t nbytes) {
  return XXH3_64bits(data, static_cast<size_t>(nbytes));
}

void load_arrays(LoadPlan& plan, const std::string& array_file,
                 bool verify_checksums,
                 const std::shared_ptr<void>& caller_memory,
                 const std::string& what) {
  ReadSchedule schedule = schedule_reads(plan, caller_memory);
  read_and_verify(plan, schedule, array_file, verify_checksums, what);
  std::vector<OutNode*> nodes = array_nodes(plan);
  for (size_t i = 0; i < plan.arrays.size(); ++i) {
    const ArrayLoad& a = plan.arrays[i];
    Landing land = convert(a, plan.saved.leaves[a.leaf], schedule.landing[i],
                           caller_memory);
    nodes[i]->value =
        ckpt::sdk::OutValue::array(a.dtype, a.shape, land.data, land.owner);
  }
}

}  // namespace ckpt_pytree
