#include "load/read_schedule.h"

#include <ckpt/sdk/error.h>
#include <ckpt/sdk/value.h>

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <map>
#include <new>

#include "records/tree_index.h"
#include "runtime/buffers.h"
#include "runtime/parallel.h"
#include "tree/cast.h"
#include "tree/dtypes.h"

namespace ckpt::pytree {

namespace {

using ckpt::sdk::Error;

// Packed datasets whose every array is requested as saved are read in one
// piece; the arrays then alias slices of it. Returns their element counts.
// Throws DATA_LOSS naming `what` when a pack's arrays add up to more
// elements than any array can have.
std::map<std::string, uint64_t> fully_requested_packs(const LoadPlan& plan,
                                                      const std::string& what) {
  std::map<std::string, uint64_t> total, requested;
  for (const LeafRecord& leaf : plan.saved.leaves) {
    if (leaf.kind == LeafKind::kArray && leaf.location.packed) {
      uint64_t& sum = total[leaf.location.dataset];
      sum += element_count(leaf.shape);  // each below 2^63: no wrap-around
      if (sum > static_cast<uint64_t>(INT64_MAX)) {
        throw Error(CKPT_ERROR_DATA_LOSS,
                    what + ": the arrays packed in dataset " +
                        leaf.location.dataset +
                        " add up to more elements than any array can have");
      }
    }
  }
  for (const ArrayLoad& a : plan.arrays) {
    if (a.assembled) continue;
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

// Schedules reading the packed `dataset` (`elements` long) whole; its
// arrays are not yet attached (land_in_pack), nor is it cut into slices
// (slice_whole_packs).
void schedule_whole_pack(const LoadPlan& plan, const std::string& dataset,
                         uint64_t elements, ReadSchedule& schedule) {
  const LeafRecord* any = nullptr;
  for (const ArrayLoad& a : plan.arrays) {
    const LeafRecord& leaf = plan.saved.leaves[a.leaf];
    if (leaf.location.packed && leaf.location.dataset == dataset) any = &leaf;
  }
  ArrayToRead r;
  r.dataset = dataset;
  r.dtype = any->dtype;  // every array of a pack has it (parse checked)
  r.packed = true;
  r.count = elements;
  r.key_path = "(packed " + dtype_name(any->dtype) + " arrays)";
  schedule.pack_of_read.push_back(static_cast<int>(schedule.packs.size()));
  schedule.packs.push_back({any->dtype, elements, nullptr});
  schedule.reads.push_back(std::move(r));
  schedule.arrays_of_read.emplace_back();
}

// Attaches plan array `i` to read `read`, the whole pack of `elements`
// elements it is a slice of. Throws DATA_LOSS naming `what` when its
// recorded offset puts it outside the pack.
void land_in_pack(const LoadPlan& plan, size_t i, size_t read,
                  uint64_t elements, ReadSchedule& schedule,
                  const std::string& array_file, const std::string& what) {
  const LeafRecord& leaf = plan.saved.leaves[plan.arrays[i].leaf];
  uint64_t count = element_count(leaf.shape);
  if (leaf.location.offset > elements ||
      count > elements - leaf.location.offset) {
    throw Error(CKPT_ERROR_DATA_LOSS,
                what + ": key path " + key_path_repr(leaf.path) +
                    ": the storage.offset " +
                    std::to_string(leaf.location.offset) + " recorded in " +
                    plan.saved.record +
                    " lies outside the packed "
                    "dataset " +
                    leaf.location.dataset + " of " + array_file);
  }
  schedule.arrays_of_read[read].push_back(i);
}

// Cuts every whole-pack read into slices of about `slice_bytes`, each
// holding whole arrays: a cut falls only where no array reaches across it
// (arrays of a damaged file may overlap), so that each slice's arrays can
// be checked as soon as it is read.
void slice_whole_packs(const LoadPlan& plan, uint64_t slice_bytes,
                       ReadSchedule& schedule) {
  const size_t whole_reads = schedule.reads.size();
  for (size_t k = 0; k < whole_reads; ++k) {
    if (schedule.pack_of_read[k] < 0) continue;
    std::vector<size_t> arrays = std::move(schedule.arrays_of_read[k]);
    auto offset_of = [&](size_t i) {
      return plan.saved.leaves[plan.arrays[i].leaf].location.offset;
    };
    std::stable_sort(arrays.begin(), arrays.end(), [&](size_t a, size_t b) {
      return offset_of(a) < offset_of(b);
    });
    const ArrayToRead whole = schedule.reads[k];
    const uint64_t item = ckpt::sdk::dtype_size(whole.dtype);
    const uint64_t slice_elements = std::max<uint64_t>(1, slice_bytes / item);
    // Slice j covers elements [start, cut); the first reuses read k.
    uint64_t start = 0, reach = 0;
    std::vector<size_t> members;
    auto close_slice = [&](uint64_t cut, bool first) {
      ArrayToRead r = whole;
      r.offset = start;
      r.count = cut - start;
      size_t read = k;
      if (first) {
        schedule.reads[k] = std::move(r);
        schedule.arrays_of_read[k] = std::move(members);
      } else {
        read = schedule.reads.size();
        schedule.reads.push_back(std::move(r));
        schedule.arrays_of_read.push_back(std::move(members));
        schedule.pack_of_read.push_back(schedule.pack_of_read[k]);
      }
      members.clear();
      start = cut;
      return read;
    };
    bool first = true;
    for (size_t i : arrays) {
      const uint64_t begin = offset_of(i);
      if (begin >= reach && begin - start >= slice_elements && begin > start) {
        close_slice(begin, first);
        first = false;
      }
      members.push_back(i);
      const LeafRecord& leaf = plan.saved.leaves[plan.arrays[i].leaf];
      reach = std::max(reach, begin + element_count(leaf.shape));
    }
    close_slice(whole.count, first);
  }
}

// Schedules reading plan array `i` alone.
void schedule_own_read(const LoadPlan& plan, size_t i, ReadSchedule& schedule) {
  const ArrayLoad& a = plan.arrays[i];
  const LeafRecord& leaf = plan.saved.leaves[a.leaf];
  ArrayToRead r;
  r.dataset = leaf.location.dataset;
  r.dtype = leaf.dtype;
  r.dims = leaf.shape;
  r.packed = leaf.location.packed;
  r.offset = leaf.location.offset;
  r.count = element_count(leaf.shape);
  r.key_path = key_path_repr(leaf.path);
  schedule.reads.push_back(std::move(r));
  schedule.arrays_of_read.push_back({i});
  schedule.pack_of_read.push_back(-1);
}

}  // namespace

ReadSchedule schedule_reads(const LoadPlan& plan, const std::string& array_file,
                            const std::string& what) {
  ReadSchedule schedule;
  schedule.landing.resize(plan.arrays.size());
  // Same keys and order as fully_requested_packs(), so a pack's position in
  // this map is the index of its read.
  std::map<std::string, uint64_t> packs = fully_requested_packs(plan, what);
  uint64_t pack_bytes = 0;
  for (const auto& [dataset, elements] : packs) {
    schedule_whole_pack(plan, dataset, elements, schedule);
    pack_bytes += elements * ckpt::sdk::dtype_size(schedule.packs.back().dtype);
  }
  for (size_t i = 0; i < plan.arrays.size(); ++i) {
    if (plan.arrays[i].assembled) continue;  // see assemble()
    const LeafRecord& leaf = plan.saved.leaves[plan.arrays[i].leaf];
    auto pack = packs.find(leaf.location.dataset);
    if (leaf.location.packed && pack != packs.end()) {
      size_t read = static_cast<size_t>(std::distance(packs.begin(), pack));
      land_in_pack(plan, i, read, pack->second, schedule, array_file, what);
    } else {
      schedule_own_read(plan, i, schedule);
    }
  }
  // A few slices per thread, of at least 1 MiB.
  slice_whole_packs(
      plan,
      std::max<uint64_t>(1u << 20, pack_bytes / (4 * threads_for(pack_bytes))),
      schedule);
  return schedule;
}

std::shared_ptr<void> allocate_for(uint64_t nbytes,
                                   const std::string& for_what) {
  try {
    return allocate_buffer(nbytes);
  } catch (const std::bad_alloc&) {
    throw Error(
        ckpt::sdk::error_code_from_errno(ENOMEM),
        for_what + ": cannot allocate " + std::to_string(nbytes) + " bytes");
  }
}

Landing land_array(const ArrayLoad& a, const LeafRecord& leaf, uint64_t nbytes,
                   const std::shared_ptr<void>& caller_memory,
                   const std::string& for_what) {
  if (a.caller_buffer && a.dtype == leaf.dtype && a.shape == leaf.shape) {
    return {a.caller_buffer, caller_memory};
  }
  Landing landing;
  landing.owner = allocate_for(nbytes, for_what);
  landing.data = landing.owner.get();
  return landing;
}

void allocate_landings(const LoadPlan& plan, ReadSchedule& schedule,
                       const std::shared_ptr<void>& caller_memory,
                       const std::string& what) {
  for (ReadSchedule::WholePack& pack : schedule.packs) {
    pack.memory = allocate_for(
        pack.elements * ckpt::sdk::dtype_size(pack.dtype),
        what + ": the packed " + dtype_name(pack.dtype) + " arrays");
  }
  for (size_t k = 0; k < schedule.reads.size(); ++k) {
    ArrayToRead& r = schedule.reads[k];
    size_t item = ckpt::sdk::dtype_size(r.dtype);
    if (schedule.pack_of_read[k] >= 0) {
      const auto& memory =
          schedule.packs[static_cast<size_t>(schedule.pack_of_read[k])].memory;
      char* base = static_cast<char*>(memory.get());
      r.destination = base + r.offset * item;
      for (size_t i : schedule.arrays_of_read[k]) {
        const LeafRecord& leaf = plan.saved.leaves[plan.arrays[i].leaf];
        schedule.landing[i].owner = memory;
        schedule.landing[i].data = base + leaf.location.offset * item;
      }
      continue;
    }
    size_t i = schedule.arrays_of_read[k][0];
    const ArrayLoad& a = plan.arrays[i];
    const LeafRecord& leaf = plan.saved.leaves[a.leaf];
    Landing& landing = schedule.landing[i];
    landing = land_array(a, leaf, r.count * item, caller_memory,
                         what + ": key path " + r.key_path);
    r.destination = landing.data;
  }
}

}  // namespace ckpt::pytree
