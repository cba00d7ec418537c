// ckpt/sdk/boxes.h -- boxes of a sharded array's global index space
// (ckpt_shard): whether a set of boxes tiles a global shape, and where two
// boxes meet. `B` is any type with `offset` and `shape` vectors of
// int64_t, of the global shape's rank.
#ifndef CKPT_SDK_BOXES_H_
#define CKPT_SDK_BOXES_H_

#include <ckpt/sdk/text.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace ckpt::sdk {

// The number of elements of `shape`; -1 for a negative extent or a count
// above INT64_MAX.
inline int64_t box_volume(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || (d != 0 && n > INT64_MAX / d)) return -1;
    n *= d;
  }
  return n;
}

// Whether `box` has the rank of `global` and lies inside it.
template <class B>
bool box_inside(const B& box, const std::vector<int64_t>& global) {
  if (box.offset.size() != global.size() || box.shape.size() != global.size())
    return false;
  for (size_t d = 0; d < global.size(); ++d) {
    if (box.offset[d] < 0 || box.shape[d] < 0 || box.offset[d] > global[d] ||
        box.shape[d] > global[d] - box.offset[d]) {
      return false;
    }
  }
  return true;
}

// Whether boxes `a` and `b` (inside one global shape) share an element.
template <class B>
bool boxes_overlap(const B& a, const B& b) {
  if (box_volume(a.shape) <= 0 || box_volume(b.shape) <= 0) return false;
  for (size_t d = 0; d < a.offset.size(); ++d) {
    if (a.offset[d] >= b.offset[d] + b.shape[d] ||
        b.offset[d] >= a.offset[d] + a.shape[d]) {
      return false;
    }
  }
  return true;
}

// "[[offset...], [shape...]]", for messages.
template <class B>
std::string box_text(const B& box) {
  return "[" + shape_text(box.offset) + ", " + shape_text(box.shape) + "]";
}

// Empty when `boxes` (all distinct) lie inside `global`, are disjoint and
// cover it; otherwise what is wrong, for a message. Sorted by their start
// in dimension 0, a box is compared only with the boxes that start before
// it ends there: linear for boxes split along dimension 0.
template <class B>
std::string tiling_problem(const std::vector<B>& boxes,
                           const std::vector<int64_t>& global) {
  const int64_t total = box_volume(global);
  if (total < 0) return "the global shape is negative or too large";
  std::vector<size_t> order(boxes.size());
  for (size_t i = 0; i < order.size(); ++i) {
    if (!box_inside(boxes[i], global)) {
      return "the box " + box_text(boxes[i]) +
             " ([offset, shape]) does not lie inside the global shape";
    }
    order[i] = i;
  }
  if (!global.empty()) {
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return boxes[a].offset[0] < boxes[b].offset[0];
    });
  }
  int64_t covered = 0;
  for (size_t x = 0; x < order.size(); ++x) {
    const B& a = boxes[order[x]];
    covered += box_volume(a.shape);  // each inside global: no overflow
    if (covered > total) covered = total + 1;  // overlap, found below
    for (size_t y = x + 1; y < order.size(); ++y) {
      const B& b = boxes[order[y]];
      if (!global.empty() && b.offset[0] >= a.offset[0] + a.shape[0]) break;
      if (boxes_overlap(a, b)) {
        return "the boxes " + box_text(a) + " and " + box_text(b) +
               " ([offset, shape]) overlap without being the same box";
      }
    }
  }
  if (covered != total) {
    return "the boxes cover " + std::to_string(covered) + " of the " +
           std::to_string(total) + " elements of the global shape";
  }
  return "";
}

}  // namespace ckpt::sdk

#endif  // CKPT_SDK_BOXES_H_
