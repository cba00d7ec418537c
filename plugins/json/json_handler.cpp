// The json plugin: JSON documents (and trees without arrays) as one JSON
// file per checkpointable. Registers the general json handler and the
// metrics handler (the same type writing `metrics`, scoped to `metrics`).
#include <ckpt/sdk/config.h>
#include <ckpt/sdk/files.h>
#include <ckpt/sdk/json.h>
#include <ckpt/sdk/plugin.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace {

using ckpt::sdk::Error;
using ordered_json = nlohmann::ordered_json;

constexpr const char* kTypestr = "ckpt.json.JsonHandler";
constexpr const char* kDefaultFilename = "data.json";
// Orbax v0 wrote JSON items to a file named after the item, `metadata`.
constexpr const char* kLegacyFilename = "metadata";

// `v` as JSON; `depth`: the dicts and lists around it. The host never
// passes a value nested deeper than the limit; this checks anyway, since
// the conversion recurses.
ordered_json to_json(const ckpt_value& v, size_t depth = 0) {
  if ((v.kind == CKPT_VALUE_DICT || v.kind == CKPT_VALUE_LIST) &&
      ++depth > ckpt::sdk::kMaxJsonDepth) {
    throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                "the json handler saves trees nested at most " +
                    std::to_string(ckpt::sdk::kMaxJsonDepth) + " levels deep");
  }
  switch (v.kind) {
    case CKPT_VALUE_NONE:
      return nullptr;
    case CKPT_VALUE_BOOL:
      return v.int_value != 0;
    case CKPT_VALUE_INT:
      return v.int_value;
    case CKPT_VALUE_DOUBLE:
      return v.double_value;
    case CKPT_VALUE_STRING:
      return std::string(ckpt::sdk::string_of(v));
    case CKPT_VALUE_DICT: {
      ordered_json out = ordered_json::object();
      for (size_t i = 0; i < v.count; ++i) {
        out[v.keys[i]] = to_json(v.children[i], depth);
      }
      return out;
    }
    case CKPT_VALUE_LIST: {
      ordered_json out = ordered_json::array();
      for (size_t i = 0; i < v.count; ++i)
        out.push_back(to_json(v.children[i], depth));
      return out;
    }
    default:
      throw Error(CKPT_ERROR_INVALID_ARGUMENT,
                  "the json handler saves JSON documents and trees without "
                  "arrays");
  }
}

class JsonHandler final : public ckpt::sdk::Handler {
 public:
  explicit JsonHandler(const std::string& config_json)
      : filename_(ckpt::sdk::filename_option(config_json, kDefaultFilename,
                                             "json handler")) {}

  bool is_handleable(const ckpt_value& value) override {
    return value.kind == CKPT_VALUE_JSON || ckpt::sdk::is_plain_tree(value);
  }

  ckpt_answer is_abstract_handleable(const ckpt_value&) override {
    return CKPT_ANSWER_DEFER;
  }

  ckpt::sdk::SaveWork save(const ckpt::sdk::Call& call, const ckpt_value& value,
                           ckpt::sdk::RetainedValue) override {
    if (!call.is_primary_host) return nullptr;
    // The snapshot is the serialized text.
    std::string text = value.kind == CKPT_VALUE_JSON
                           ? std::string(ckpt::sdk::string_of(value))
                           : to_json(value).dump();
    std::string path = ckpt::sdk::join_path(call.directory, filename_);
    return [path, text = std::move(text), mode = call.file_mode] {
      ckpt::sdk::write_file(path, text, mode);
    };
  }

  ckpt::sdk::LoadWork load(const ckpt::sdk::Call& call, const ckpt_value*,
                           ckpt::sdk::RetainedValue) override {
    std::vector<std::string> candidates = {filename_};
    for (const char* fallback : {kDefaultFilename, kLegacyFilename}) {
      if (candidates[0] != fallback) candidates.push_back(fallback);
    }
    return [call, candidates] {
      std::string text;
      for (const std::string& name : candidates) {
        std::string path = ckpt::sdk::join_path(call.directory, name);
        if (!ckpt::sdk::read_file_if_exists(path, text)) continue;
        // Checked here, to name the file: nesting depth, then syntax.
        (void)ckpt::sdk::parse_json_from_disk(text, path);
        return ckpt::sdk::OutValue::json(std::move(text));
      }
      std::string tried;
      for (const std::string& name : candidates) {
        tried += (tried.empty() ? "" : ", ") + name;
      }
      throw Error(CKPT_ERROR_NOT_FOUND, "no JSON file in " + call.directory +
                                            " (tried " + tried + ")");
    };
  }

  ckpt::sdk::OutValue metadata(const ckpt::sdk::Call&) override {
    return ckpt::sdk::OutValue::none();
  }

 private:
  std::string filename_;
};

}  // namespace

CKPT_PLUGIN("json", registrar) {
  registrar.handler_type<JsonHandler>(
      kTypestr,
      {"orbax.checkpoint.experimental.v1._src.handlers.json_handler."
       "JsonHandler",
       "orbax.checkpoint._src.handlers.json_checkpoint_handler."
       "JsonCheckpointHandler"},
      "JSON documents and trees without arrays, as data.json");
  registrar.registration(kTypestr);
  registrar.registration(kTypestr, "metrics", R"({"filename": "metrics"})");
}
