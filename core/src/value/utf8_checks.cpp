#include "value/utf8_checks.h"

#include <ckpt/errors.h>
#include <ckpt/sdk/text.h>

#include <string_view>
#include <vector>

namespace ckpt::internal {

namespace {

constexpr const char* kWhy = "is not valid UTF-8 (metadata is JSON text)";

// One node of a walk, and how to name it: its parent's frame and its key
// (or its index in a list).
template <typename Node>
struct Frame {
  const Node* node;
  size_t parent;  // npos for the root
  std::string_view key;
  size_t index;
};

template <typename Node>
std::string path_of(const std::vector<Frame<Node>>& frames, size_t at) {
  std::string path;
  for (size_t i = at; frames[i].parent != std::string::npos;
       i = frames[i].parent) {
    const Frame<Node>& f = frames[i];
    const std::string part = f.key.data() ? "'" + sdk::escaped(f.key) + "'"
                                          : std::to_string(f.index);
    path = "[" + part + "]" + path;
  }
  return path.empty() ? "" : " at " + path;
}

[[noreturn]] void refuse(const std::string& what, const char* kind,
                         std::string_view text, const std::string& where) {
  throw InvalidArgumentError(what + ": the " + kind + " '" +
                             sdk::escaped(text) + "'" + where + " " + kWhy);
}

}  // namespace

void check_utf8(const std::string& text, const std::string& what) {
  if (!sdk::is_utf8(text)) {
    throw InvalidArgumentError(what + " '" + sdk::escaped(text) + "' " + kWhy);
  }
}

void check_json_text(const nlohmann::json& document, const std::string& what) {
  using Json = nlohmann::json;
  std::vector<Frame<Json>> frames = {{&document, std::string::npos, {}, 0}};
  for (size_t i = 0; i < frames.size(); ++i) {
    const Json& node = *frames[i].node;
    if (node.is_string()) {
      const std::string& s = node.get_ref<const std::string&>();
      if (!sdk::is_utf8(s)) refuse(what, "string", s, path_of(frames, i));
    } else if (node.is_object()) {
      for (auto it = node.begin(); it != node.end(); ++it) {
        if (!sdk::is_utf8(it.key())) {
          refuse(what, "key", it.key(), path_of(frames, i));
        }
        frames.push_back({&it.value(), i, it.key(), 0});
      }
    } else if (node.is_array()) {
      for (size_t k = 0; k < node.size(); ++k) {
        frames.push_back({&node[k], i, {}, k});
      }
    }
  }
}

void check_value_text(const Value& value, const std::string& what) {
  std::vector<Frame<Value>> frames = {{&value, std::string::npos, {}, 0}};
  for (size_t i = 0; i < frames.size(); ++i) {
    const Value& node = *frames[i].node;
    switch (node.kind()) {
      case Value::Kind::kString:
        if (!sdk::is_utf8(node.as_string())) {
          refuse(what, "string", node.as_string(), path_of(frames, i));
        }
        break;
      case Value::Kind::kJson:
        check_json_text(node.as_json(), what + path_of(frames, i));
        break;
      case Value::Kind::kDict:
        for (const auto& [key, child] : node.as_dict()) {
          if (!sdk::is_utf8(key)) refuse(what, "key", key, path_of(frames, i));
          frames.push_back({&child, i, key, 0});
        }
        break;
      case Value::Kind::kList: {
        const auto& list = node.as_list();
        for (size_t k = 0; k < list.size(); ++k) {
          frames.push_back({&list[k], i, {}, k});
        }
        break;
      }
      default:
        break;
    }
  }
}

}  // namespace ckpt::internal
