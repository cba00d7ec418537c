#include "handlers/handler_types.h"

#include <ckpt/errors.h>

#include <mutex>
#include <vector>

namespace ckpt::internal {

namespace {

struct TypeTable {
  std::mutex mutex;
  std::vector<std::shared_ptr<const HandlerType>> types;
};

TypeTable& table() {
  static auto* t = new TypeTable();
  return *t;
}

}  // namespace

void add_handler_type(std::shared_ptr<const HandlerType> type) {
  TypeTable& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  for (const auto& existing : t.types) {
    if (existing->info.typestr == type->info.typestr) {
      throw AlreadyExistsError("handler type '" + type->info.typestr +
                               "' is already registered by " +
                               existing->info.origin);
    }
  }
  t.types.push_back(std::move(type));
}

std::shared_ptr<const HandlerType> find_handler_type(
    const std::string& typestr) {
  TypeTable& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  for (const auto& type : t.types) {
    if (type->info.typestr == typestr) return type;
  }
  return nullptr;
}

std::vector<std::shared_ptr<const HandlerType>> all_handler_types() {
  TypeTable& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  return t.types;
}

}  // namespace ckpt::internal
