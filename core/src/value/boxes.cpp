// Boxes of sharded arrays (ckpt/value.h).
#include <ckpt/errors.h>
#include <ckpt/sdk/text.h>
#include <ckpt/value.h>

namespace ckpt {

std::vector<Box> split_evenly(const Shape& global_shape, size_t dim,
                              int count) {
  if (dim >= global_shape.size() || count < 1) {
    throw InvalidArgumentError("split_evenly: dimension " +
                               std::to_string(dim) + " of shape " +
                               sdk::shape_text(global_shape) + " into " +
                               std::to_string(count) + " boxes");
  }
  std::vector<Box> boxes;
  const int64_t n = global_shape[dim];
  int64_t start = 0;
  for (int i = 0; i < count; ++i) {
    const int64_t extent = n / count + (i < n % count ? 1 : 0);
    Box box{Shape(global_shape.size(), 0), global_shape};
    box.offset[dim] = start;
    box.shape[dim] = extent;
    boxes.push_back(std::move(box));
    start += extent;
  }
  return boxes;
}

}  // namespace ckpt
