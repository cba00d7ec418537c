// The reads of a load: which bytes of the array file are read in one
// piece, and where every planned array's saved bytes land (the caller's
// buffer, a slice of a whole pack, or fresh memory).
#ifndef CKPT_PLUGINS_PYTREE_LOAD_READ_SCHEDULE_H_
#define CKPT_PLUGINS_PYTREE_LOAD_READ_SCHEDULE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hdf5/array_file.h"
#include "load/load_plan.h"

namespace ckpt::pytree {

// Where one planned array's saved bytes land.
struct Landing {
  void* data = nullptr;
  std::shared_ptr<void> owner;
};

// The reads of a load and where their bytes land. A packed dataset whose
// every array is requested as saved is read whole, as slices (so that
// several threads share it) into one buffer its arrays alias.
struct ReadSchedule {
  std::vector<Landing> landing;  // per plan array, once allocated
  std::vector<ArrayToRead> reads;
  std::vector<std::vector<size_t>> arrays_of_read;  // plan arrays per read
  std::vector<int> pack_of_read;                    // index into `packs`, or -1
  struct WholePack {
    ckpt_dtype dtype;
    uint64_t elements;
    std::shared_ptr<void> memory;  // once allocated
  };
  std::vector<WholePack> packs;
};

// Decides every read of `plan`: fully requested packs first, in slices,
// then every array not in one of them on its own. Allocates nothing.
ReadSchedule schedule_reads(const LoadPlan& plan, const std::string& array_file,
                            const std::string& what);

// `nbytes` of fresh memory for `for_what`; running out of memory is an
// error naming it, not a bare std::bad_alloc.
std::shared_ptr<void> allocate_for(uint64_t nbytes,
                                   const std::string& for_what);

// Where array `a` (saved as `leaf`, `nbytes` as saved) lands: the caller's
// buffer when it is asked for as saved, else fresh memory.
Landing land_array(const ArrayLoad& a, const LeafRecord& leaf, uint64_t nbytes,
                   const std::shared_ptr<void>& caller_memory,
                   const std::string& for_what);

// Gives every read of `schedule` its destination, once the array file has
// vouched for the sizes: a whole pack fresh memory its slices and arrays
// alias; an array requested as saved into a caller's buffer, that buffer;
// any other array fresh memory.
void allocate_landings(const LoadPlan& plan, ReadSchedule& schedule,
                       const std::shared_ptr<void>& caller_memory,
                       const std::string& what);

}  // namespace ckpt::pytree

#endif  // CKPT_PLUGINS_PYTREE_LOAD_READ_SCHEDULE_H_
