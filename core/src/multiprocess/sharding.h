// Where the pieces of sharded arrays go (ckpt::ShardPlacement): every
// process describes its shards (shard_layout), the processes exchange the
// descriptions (collective_steps.h, step 0), and each process decides the
// same placement from all of them (place_shards). One process alone takes
// the same two steps with its own description.
#ifndef CKPT_SRC_MULTIPROCESS_SHARDING_H_
#define CKPT_SRC_MULTIPROCESS_SHARDING_H_

#include <ckpt/checkpoint.h>

#include <string>
#include <vector>

namespace ckpt::internal {

// Whether `value` holds a sharded array (a leaf of its dicts and lists).
bool holds_sharded(const Value& value);

// The sharded arrays of `items` (leaves of dicts and lists), in tree
// order: checkpointable, key path, dtype, global shape and this process's
// boxes, as text. InvalidArgumentError, naming the array, for a shard of
// another dtype or rank, or a box outside the global shape.
std::string shard_layout(const Checkpointables& items);

// Sets the placement of every sharded array of `items` from `layouts`
// (shard_layout of every process, by process index; `me` is this one):
// the distinct boxes, the lowest process holding each as its writer, and
// the box of each of this process's shards. Every process reaches the
// same decision, or the same InvalidArgumentError, naming the processes,
// when their sharded arrays differ (key paths, dtypes, global shapes),
// when two boxes overlap without being equal, or when the boxes leave part
// of the global shape uncovered.
void place_shards(Checkpointables& items,
                  const std::vector<std::string>& layouts, int me);

}  // namespace ckpt::internal

#endif  // CKPT_SRC_MULTIPROCESS_SHARDING_H_
