// The SDK's ValueArena, which both the core's view of a Value and the SDK's
// freeze() build their ckpt_value trees in: what it hands out stays put and
// holds what was copied, however much comes after; owners live as long as
// the arena.
#include <ckpt/sdk/value.h>
#include <ckpt/sdk/value_arena.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

using ckpt::sdk::ValueArena;

TEST_CASE("ValueArena: copies stay where they are as the arena grows",
          "[sdk]") {
  ValueArena arena;
  std::vector<std::pair<const char*, std::string>> texts;
  std::vector<std::pair<const int64_t*, std::vector<int64_t>>> dims;
  // Small and large copies, enough to span many blocks of every size.
  for (int i = 0; i < 3000; ++i) {
    std::string text(static_cast<size_t>(i % 97) * (i % 11 == 0 ? 400 : 1),
                     static_cast<char>('a' + i % 26));
    texts.emplace_back(arena.text(text), text);
    std::vector<int64_t> d(static_cast<size_t>(i % 5), i);
    dims.emplace_back(arena.dims(d), d);
  }
  for (const auto& [at, text] : texts) {
    REQUIRE(std::string(at) == text);  // NUL-terminated, unchanged
  }
  for (const auto& [at, d] : dims) {
    if (d.empty()) {
      CHECK(at == nullptr);
    } else {
      REQUIRE(reinterpret_cast<uintptr_t>(at) % alignof(int64_t) == 0);
      REQUIRE(std::vector<int64_t>(at, at + d.size()) == d);
    }
  }
}

TEST_CASE("ValueArena: blocks are zeroed, structs carry their size", "[sdk]") {
  ValueArena arena;
  CHECK(arena.nodes(0) == nullptr);
  CHECK(arena.keys(0) == nullptr);
  CHECK(arena.shards(0) == nullptr);
  ckpt_value* nodes = arena.nodes(3);
  for (int i = 0; i < 3; ++i) {
    CHECK(nodes[i].kind == CKPT_VALUE_NONE);
    CHECK(nodes[i].children == nullptr);
  }
  const char** keys = arena.keys(2);
  CHECK(keys[0] == nullptr);
  CHECK(arena.array().struct_size == CKPT_ARRAY_STRUCT_SIZE);
  CHECK(arena.proto().struct_size == CKPT_PROTO_STRUCT_SIZE);
  CHECK(arena.object().struct_size == CKPT_OBJECT_STRUCT_SIZE);
  CHECK(arena.sharded().struct_size == CKPT_SHARDED_ARRAY_STRUCT_SIZE);
  // Message bytes and descriptors side by side, never null.
  const uint8_t* empty = arena.bytes("", "");
  CHECK(empty != nullptr);
  const uint8_t* both = arena.bytes("abc", "de");
  CHECK(std::memcmp(both, "abcde", 5) == 0);
  const std::string big(100000, 'x');
  CHECK(std::string(arena.adopt(big)) == big);
}

TEST_CASE("ValueArena: keeps each owner alive as long as itself", "[sdk]") {
  auto owner = std::make_shared<int>(7);
  std::weak_ptr<int> watch = owner;
  {
    ValueArena arena;
    arena.keep(owner);
    arena.keep(owner);  // the same owner again: kept once
    arena.keep(nullptr);
    owner.reset();
    CHECK_FALSE(watch.expired());
  }
  CHECK(watch.expired());
}

TEST_CASE("freeze: a deep OutValue is refused, a wide one is whole", "[sdk]") {
  using ckpt::sdk::OutValue;
  OutValue deep = OutValue::list();
  for (size_t i = 0; i < ckpt::sdk::kMaxValueDepth; ++i) {
    OutValue outer = OutValue::list();
    outer.add(std::move(deep));
    deep = std::move(outer);
  }
  CHECK_THROWS_AS(ckpt::sdk::freeze(std::move(deep)), ckpt::sdk::Error);

  OutValue wide = OutValue::list();
  for (int i = 0; i < 5000; ++i) wide.add(OutValue::integer(i));
  ckpt_owned_value owned = ckpt::sdk::freeze(std::move(wide));
  REQUIRE(owned.value->count == 5000);
  CHECK(owned.value->children[4999].int_value == 4999);
  owned.deleter(owned.deleter_ctx);
}

}  // namespace
