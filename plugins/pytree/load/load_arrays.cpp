#include "load/load_arrays.h"

#include <ckpt/sdk/boxes.h>
#include <ckpt/sdk/error.h>
#include <ckpt/sdk/files.h>
#include <ckpt/sdk/value.h>
#include <xxhash.h>
#if defined(__x86_64__)
// XXH3 with the widest vector unit the CPU has (twice the speed of the
// SSE2 build on AVX2 machines); the same hashes.
#include <xxh_x86dispatch.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <map>
#include <new>

#include "hdf5/array_file.h"
#include "load/read_schedule.h"
#include "records/tree_index.h"
#include "runtime/buffers.h"
#include "runtime/parallel.h"
#include "tree/cast.h"
#include "tree/dtypes.h"

namespace ckpt::pytree {

namespace {

using ckpt::sdk::Error;

// Checks the arrays of one read against their recorded checksums as the
// read's bytes arrive, in order: an array is hashed chunk by chunk while
// those bytes are still in the reading core's caches, and compared once
// complete. Arrays of a damaged file may overlap; one that lies inside an
// earlier one is hashed whole once that one is complete.
class ReadVerifier {
 public:
  ReadVerifier(const LoadPlan& plan, const ReadSchedule& schedule, size_t read)
      : plan_(plan) {
    const ArrayToRead& r = schedule.reads[read];
    base_ = static_cast<const char*>(r.destination);
    const uint64_t item = ckpt::sdk::dtype_size(r.dtype);
    for (size_t i : schedule.arrays_of_read[read]) {
      const LeafRecord& leaf = plan.saved.leaves[plan.arrays[i].leaf];
      if (!leaf.has_checksum) continue;
      const uint64_t begin = schedule.pack_of_read[read] >= 0
                                 ? (leaf.location.offset - r.offset) * item
                                 : 0;
      arrays_.push_back({begin, begin + element_count(leaf.shape) * item, i});
    }
    std::stable_sort(
        arrays_.begin(), arrays_.end(),
        [](const Pending& a, const Pending& b) { return a.begin < b.begin; });
  }

  // The read's first `done` bytes are in memory. Throws DATA_LOSS naming
  // `what` and `array_file` for an array that does not match its checksum.
  void advance(uint64_t done, const std::string& array_file,
               const std::string& what) {
    while (next_ < arrays_.size()) {
      const Pending& p = arrays_[next_];
      if (p.end > done) {
        if (done > p.begin) stream(p, done);
        return;
      }
      uint64_t hash;
      if (streaming_) {
        stream(p, p.end);
        hash = XXH3_64bits_digest(state_.get());
        streaming_ = false;
      } else {
        hash = checksum(base_ + p.begin, p.end - p.begin);
      }
      const LeafRecord& leaf = plan_.saved.leaves[plan_.arrays[p.array].leaf];
      if (hash != leaf.xxh3) {
        throw Error(CKPT_ERROR_DATA_LOSS,
                    what + ": key path " + key_path_repr(leaf.path) +
                        ": checksum mismatch (dataset " +
                        leaf.location.dataset + " in " + array_file +
                        "): the array data is corrupted");
      }
      ++next_;
    }
  }

 private:
  struct Pending {
    uint64_t begin, end;  // bytes of the read
    size_t array;         // plan array
  };

  // Hashes bytes [hashed_, up_to) of the array `p`, which is not complete.
  void stream(const Pending& p, uint64_t up_to) {
    if (!streaming_) {
      if (!state_) {
        state_.reset(XXH3_createState());
        if (!state_) throw std::bad_alloc();
      }
      XXH3_64bits_reset(state_.get());
      hashed_ = p.begin;
      streaming_ = true;
    }
    XXH3_64bits_update(state_.get(), base_ + hashed_,
                       static_cast<size_t>(up_to - hashed_));
    hashed_ = up_to;
  }

  struct FreeState {
    void operator()(XXH3_state_t* s) const { XXH3_freeState(s); }
  };

  const LoadPlan& plan_;
  const char* base_ = nullptr;
  std::vector<Pending> arrays_;  // by first byte
  size_t next_ = 0;              // arrays_[next_] is the first unchecked
  bool streaming_ = false;       // arrays_[next_] is partly hashed
  uint64_t hashed_ = 0;
  std::unique_ptr<XXH3_state_t, FreeState> state_;
};

// Performs the reads of `schedule` from `file`, verifying checksums when
// asked: each read's arrays on the thread that reads them, as their bytes
// arrive.
void read_and_verify(const LoadPlan& plan, const ReadSchedule& schedule,
                     ArrayFileReader& file, const std::string& array_file,
                     bool verify_checksums, const std::string& what) {
  std::vector<std::unique_ptr<ReadVerifier>> verifiers(schedule.reads.size());
  ArrayFileReader::Progress on_progress;
  if (verify_checksums) {
    for (size_t k = 0; k < verifiers.size(); ++k) {
      verifiers[k] = std::make_unique<ReadVerifier>(plan, schedule, k);
    }
    on_progress = [&](size_t read, uint64_t done) {
      verifiers[read]->advance(done, array_file, what);
    };
  }
  file.read(schedule.reads, on_progress);
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
    target.owner = allocate_for(nbytes, "a loaded array");
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

// Reads every array of `plan` that is not assembled from `array_file`
// (the file's structure, then each dataset, checked before any memory is
// allocated); returns where each landed (ReadSchedule::landing).
std::vector<Landing> read_planned(const LoadPlan& plan,
                                  const std::string& array_file,
                                  bool verify_checksums,
                                  const std::shared_ptr<void>& caller_memory,
                                  const std::string& what) {
  ReadSchedule schedule = schedule_reads(plan, array_file, what);
  // The structure checksum is checked whatever verify_checksums says: it is
  // what keeps HDF5 away from a damaged file.
  ArrayFileReader file(
      array_file, plan.saved.has_structure ? &plan.saved.structure : nullptr,
      plan.saved.record, what);
  file.check(schedule.reads);  // before any allocation
  allocate_landings(plan, schedule, caller_memory, what);
  read_and_verify(plan, schedule, file, array_file, verify_checksums, what);
  return std::move(schedule.landing);
}

// Piece `k` of the sharded array `leaf`.
using PieceId = std::pair<const LeafRecord*, size_t>;

// Reads the pieces `needed` from the files of the processes that wrote
// them (process_metadata_file and process_array_file in `directory`), each
// process's file once. Throws DATA_LOSS naming `what` and the file when a
// piece is not where the checkpoint's record (`saved_record`, its
// _TREE_INDEX or _METADATA) says.
std::map<PieceId, Landing> read_pieces(const std::vector<PieceId>& needed,
                                       const std::string& directory,
                                       bool verify_checksums,
                                       const std::string& saved_record,
                                       const std::string& what) {
  std::map<int64_t, std::vector<PieceId>> by_process;
  for (const PieceId& id : needed) {
    by_process[id.first->pieces[id.second].process].push_back(id);
  }
  std::map<PieceId, Landing> out;
  for (const auto& [process, ids] : by_process) {
    const std::string record = process_metadata_file(process);
    const std::string record_path = ckpt::sdk::join_path(directory, record);
    LoadPlan plan;
    try {
      plan.saved = read_saved_tree(directory, record, what);
    } catch (const Error& e) {
      if (e.code() != CKPT_ERROR_NOT_FOUND) throw;
      throw Error(CKPT_ERROR_DATA_LOSS,
                  what + ": " + record_path +
                      " is missing (the record of the pieces process " +
                      std::to_string(process) + " wrote)");
    }
    if (plan.saved.format < kCheckedPyTreeFormat ||
        plan.saved.array_file != process_array_file(process)) {
      throw Error(CKPT_ERROR_DATA_LOSS,
                  what + ": " + record_path +
                      " is damaged (not the record of process " +
                      std::to_string(process) + "'s pieces)");
    }
    std::map<std::string, size_t> by_path;
    for (size_t i = 0; i < plan.saved.leaves.size(); ++i) {
      by_path.emplace(key_path_repr(plan.saved.leaves[i].path), i);
    }
    for (const PieceId& id : ids) {
      const LeafRecord& leaf = *id.first;
      const StoredPiece& piece = leaf.pieces[id.second];
      auto it = by_path.find(key_path_repr(piece_path(leaf.path, id.second)));
      const LeafRecord* stored =
          it == by_path.end() ? nullptr : &plan.saved.leaves[it->second];
      if (!stored || stored->kind != LeafKind::kArray || stored->sharded ||
          stored->dtype != leaf.dtype || stored->shape != piece.shape) {
        throw Error(CKPT_ERROR_DATA_LOSS,
                    what + ": key path " + key_path_repr(leaf.path) +
                        ": piece " + std::to_string(id.second) + " (" +
                        ckpt::sdk::box_text(piece) + ") is not in " +
                        record_path + " as " + saved_record + " records it");
      }
      plan.arrays.push_back(as_saved_load(it->second, *stored));
    }
    std::vector<Landing> landing = read_planned(
        plan, ckpt::sdk::join_path(directory, plan.saved.array_file),
        verify_checksums, nullptr, what);
    for (size_t j = 0; j < ids.size(); ++j) out[ids[j]] = landing[j];
  }
  return out;
}

// The boxes an assembled array `a` of `leaf` is made of: those asked for,
// or the whole array.
std::vector<StoredPiece> targets_of(const ArrayLoad& a,
                                    const LeafRecord& leaf) {
  if (a.sharded_out) return a.boxes;
  return {
      StoredPiece{std::vector<int64_t>(leaf.shape.size(), 0), leaf.shape, 0}};
}

// The value of the assembled array `a`: each target box filled from the
// saved boxes that overlap it (`sources`, with their elements), then cast
// to the requested dtype. A plain array goes into the caller's buffer
// when there is one.
ckpt::sdk::OutValue assemble(
    const ArrayLoad& a, const LeafRecord& leaf,
    const std::vector<std::pair<const StoredPiece*, Landing>>& sources,
    const std::shared_ptr<void>& caller_memory, const std::string& what) {
  const size_t saved_item = ckpt::sdk::dtype_size(leaf.dtype);
  const bool to_caller = !a.sharded_out && a.caller_buffer;
  ckpt::sdk::OutValue out =
      ckpt::sdk::OutValue::sharded_array(a.dtype, leaf.shape);
  for (const StoredPiece& target : targets_of(a, leaf)) {
    const uint64_t count = element_count(target.shape);
    const std::string for_what =
        what + ": key path " + key_path_repr(leaf.path);
    // A box stored as it is asked for is handed over as read, uncopied.
    const Landing* same = nullptr;
    for (const auto& [box, landing] : sources) {
      if (box->offset == target.offset && box->shape == target.shape) {
        same = &landing;
      }
    }
    Landing land;
    if (same && !to_caller) {
      land = *same;
    } else {
      if (to_caller && a.dtype == leaf.dtype) {
        land = {a.caller_buffer, caller_memory};
      } else {
        land.owner = allocate_for(count * saved_item, for_what);
        land.data = land.owner.get();
      }
      for (const auto& [box, landing] : sources) {
        copy_overlap(landing.data, box->offset, box->shape, land.data,
                     target.offset, target.shape, saved_item);
      }
    }
    if (a.dtype != leaf.dtype) {
      Landing cast;
      if (to_caller) {
        cast = {a.caller_buffer, caller_memory};
      } else {
        cast.owner =
            allocate_for(count * ckpt::sdk::dtype_size(a.dtype), for_what);
        cast.data = cast.owner.get();
      }
      cast_elements(leaf.dtype, land.data, a.dtype, cast.data, count);
      land = cast;
    }
    auto array = ckpt::sdk::OutValue::array(a.dtype, target.shape, land.data,
                                            land.owner);
    if (!a.sharded_out) return array;
    out.add_shard(target.offset, std::move(array));
  }
  return out;
}

// Hands every planned array to its node: an array read whole (`landing`)
// converted to what is asked, an assembled one made from the saved boxes
// that overlap it (`pieces` of a sharded array, else the whole read).
void hand_over(LoadPlan& plan, const std::vector<Landing>& landing,
               const std::map<PieceId, Landing>& pieces,
               const std::shared_ptr<void>& caller_memory,
               const std::string& what) {
  std::vector<OutNode*> nodes = array_nodes(plan);
  for (size_t i = 0; i < plan.arrays.size(); ++i) {
    if (!nodes[i]) continue;  // a whole array read for an assembled one
    const ArrayLoad& a = plan.arrays[i];
    const LeafRecord& leaf = plan.saved.leaves[a.leaf];
    if (!a.assembled) {
      Landing land = convert(a, leaf, landing[i], caller_memory);
      // Made an array value only once the tree is handed over: the
      // records are gone by then.
      nodes[i]->data = land.data;
      nodes[i]->owner = std::move(land.owner);
      continue;
    }
    std::vector<std::pair<const StoredPiece*, Landing>> sources;
    StoredPiece whole{std::vector<int64_t>(leaf.shape.size(), 0), leaf.shape,
                      0};
    if (leaf.sharded) {
      for (size_t k = 0; k < leaf.pieces.size(); ++k) {
        auto it = pieces.find({&leaf, k});
        if (it != pieces.end()) {
          sources.emplace_back(&leaf.pieces[k], it->second);
        }
      }
    } else {
      sources.emplace_back(&whole, landing[static_cast<size_t>(a.source)]);
    }
    nodes[i]->set(assemble(a, leaf, sources, caller_memory, what));
  }
}

}  // namespace

uint64_t checksum(const void* data, uint64_t nbytes) {
  return XXH3_64bits(data, static_cast<size_t>(nbytes));
}

void load_arrays(LoadPlan& plan, const std::string& directory,
                 bool verify_checksums,
                 const std::shared_ptr<void>& caller_memory,
                 const std::string& what) {
  std::vector<Landing> landing =
      read_planned(plan, ckpt::sdk::join_path(directory, plan.saved.array_file),
                   verify_checksums, caller_memory, what);
  // The pieces of sharded arrays that overlap what is asked for.
  std::vector<PieceId> needed;
  for (const ArrayLoad& a : plan.arrays) {
    const LeafRecord& leaf = plan.saved.leaves[a.leaf];
    if (!a.assembled || !leaf.sharded) continue;
    const std::vector<StoredPiece> targets = targets_of(a, leaf);
    for (size_t k = 0; k < leaf.pieces.size(); ++k) {
      for (const StoredPiece& t : targets) {
        if (ckpt::sdk::boxes_overlap(leaf.pieces[k], t)) {
          needed.emplace_back(&leaf, k);
          break;
        }
      }
    }
  }
  const std::map<PieceId, Landing> pieces =
      read_pieces(needed, directory, verify_checksums, plan.saved.record, what);
  hand_over(plan, landing, pieces, caller_memory, what);
}

void load_orbax_arrays(LoadPlan& plan, const OrbaxStorage& storage,
                       const std::shared_ptr<void>& caller_memory,
                       const std::string& what) {
  // Every array Orbax stored is read whole (none is sharded in ckpt's
  // sense): into the caller's buffer when it is asked for as saved, else
  // into fresh memory; several at once.
  std::vector<Landing> landing(plan.arrays.size());
  std::vector<size_t> reads;
  uint64_t bytes = 0;
  for (size_t i = 0; i < plan.arrays.size(); ++i) {
    const ArrayLoad& a = plan.arrays[i];
    if (a.assembled) continue;
    const LeafRecord& leaf = plan.saved.leaves[a.leaf];
    const uint64_t nbytes =
        element_count(leaf.shape) * ckpt::sdk::dtype_size(leaf.dtype);
    storage.check(leaf);  // before any allocation
    landing[i] = land_array(a, leaf, nbytes, caller_memory,
                            what + ": key path " + key_path_repr(leaf.path));
    reads.push_back(i);
    bytes += nbytes;
  }
  parallel_for(reads.size(), threads_for(bytes), [&](size_t k) {
    const size_t i = reads[k];
    storage.read(plan.saved.leaves[plan.arrays[i].leaf], landing[i].data);
  });
  hand_over(plan, landing, {}, caller_memory, what);
}

}  // namespace ckpt::pytree
