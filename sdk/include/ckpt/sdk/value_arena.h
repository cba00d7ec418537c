// ckpt/sdk/value_arena.h -- the memory of a ckpt_value tree built in C++.
//
// A ckpt_value tree is C structs pointing at one another and at copied
// text and dimensions. ValueArena owns all of it: every block it hands out
// stays where it is for the arena's lifetime (appending never moves what
// earlier pointers refer to), and it keeps the owners of memory the tree
// borrows (array data, objects). Both directions across the ABI build
// with it: the host's view of a ckpt::Value shown to a plugin, and
// sdk::freeze() of the value a plugin hands back.
#ifndef CKPT_SDK_VALUE_ARENA_H_
#define CKPT_SDK_VALUE_ARENA_H_

#include <ckpt/abi.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt::sdk {

class ValueArena {
 public:
  ValueArena() = default;
  ValueArena(const ValueArena&) = delete;
  ValueArena& operator=(const ValueArena&) = delete;

  // `n` zeroed values in one block (a container's children), or null when
  // `n` is 0.
  ckpt_value* nodes(size_t n) { return block_of<ckpt_value>(nodes_, n); }
  // `n` null key pointers in one block (a dict's keys), or null.
  const char** keys(size_t n) { return block_of<const char*>(keys_, n); }
  // `n` zeroed shards in one block, or null.
  ckpt_shard* shards(size_t n) { return block_of<ckpt_shard>(shards_, n); }

  // One zeroed struct of each payload kind, its struct_size set.
  ckpt_array& array() { return fresh(arrays_, CKPT_ARRAY_STRUCT_SIZE); }
  ckpt_proto& proto() { return fresh(protos_, CKPT_PROTO_STRUCT_SIZE); }
  ckpt_object& object() { return fresh(objects_, CKPT_OBJECT_STRUCT_SIZE); }
  ckpt_sharded_array& sharded() {
    return fresh(sharded_, CKPT_SHARDED_ARRAY_STRUCT_SIZE);
  }

  // A NUL-terminated copy of `text`.
  const char* text(std::string_view text) {
    char* at = bytes(text.size() + 1);
    if (!text.empty()) std::memcpy(at, text.data(), text.size());
    at[text.size()] = '\0';
    return at;
  }
  // Takes `text` as it is (a large document need not be copied again);
  // NUL-terminated like every std::string.
  const char* adopt(std::string text) {
    return texts_.emplace_back(std::move(text)).c_str();
  }
  // A copy of `n` dimensions, or null when `n` is 0.
  const int64_t* dims(const int64_t* dims, size_t n) {
    if (n == 0) return nullptr;
    char* at = bytes(n * sizeof(int64_t));
    std::memcpy(at, dims, n * sizeof(int64_t));
    return reinterpret_cast<const int64_t*>(at);
  }
  const int64_t* dims(const std::vector<int64_t>& d) {
    return dims(d.data(), d.size());
  }
  // A copy of `a` followed by `b`, contiguous (a message and its
  // descriptors); never null, even when both are empty.
  const uint8_t* bytes(std::string_view a, std::string_view b) {
    char* at = bytes(std::max<size_t>(1, a.size() + b.size()));
    if (!a.empty()) std::memcpy(at, a.data(), a.size());
    if (!b.empty()) std::memcpy(at + a.size(), b.data(), b.size());
    return reinterpret_cast<const uint8_t*>(at);
  }

  // Keeps `owner` alive as long as the arena (once when it repeats the
  // previous one kept, as the leaves of one buffer do).
  void keep(const std::shared_ptr<void>& owner) {
    if (owner && (owners_.empty() || owners_.back() != owner)) {
      owners_.push_back(owner);
    }
  }

 private:
  template <class T>
  static T* block_of(std::deque<std::unique_ptr<T[]>>& blocks, size_t n) {
    if (n == 0) return nullptr;
    return blocks.emplace_back(new T[n]()).get();  // value-initialized
  }
  template <class T>
  static T& fresh(std::deque<T>& items, uint64_t struct_size) {
    T& item = items.emplace_back();
    item = T{};
    item.struct_size = struct_size;
    return item;
  }

  // `n` uninitialized bytes, 8-aligned: small requests share blocks that
  // grow from 1 KiB to 64 KiB (a small tree stays small), a large one gets
  // a block of its own.
  char* bytes(size_t n) {
    constexpr size_t kFirst = 1024, kLargest = 64 * 1024;
    if (n > kLargest / 4) {
      return blocks_.emplace_back(new char[n]).get();
    }
    if (block_size_ - block_used_ < n) {
      block_size_ =
          std::max(n, std::min(kLargest, std::max(kFirst, 2 * block_size_)));
      block_ = blocks_.emplace_back(new char[block_size_]).get();
      block_used_ = 0;
    }
    char* at = block_ + block_used_;
    // The next request starts 8-aligned (it may be dimensions).
    block_used_ = std::min(block_size_, block_used_ + ((n + 7) & ~size_t{7}));
    return at;
  }

  std::deque<std::unique_ptr<ckpt_value[]>> nodes_;
  std::deque<std::unique_ptr<const char*[]>> keys_;
  std::deque<std::unique_ptr<ckpt_shard[]>> shards_;
  std::deque<ckpt_array> arrays_;
  std::deque<ckpt_proto> protos_;
  std::deque<ckpt_object> objects_;
  std::deque<ckpt_sharded_array> sharded_;
  std::deque<std::string> texts_;
  std::vector<std::unique_ptr<char[]>> blocks_;
  char* block_ = nullptr;
  size_t block_used_ = 0, block_size_ = 0;
  std::vector<std::shared_ptr<void>> owners_;
};

}  // namespace ckpt::sdk

#endif  // CKPT_SDK_VALUE_ARENA_H_
