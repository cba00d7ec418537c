#include "runtime/options.h"

#include <ckpt/sdk/error.h>

#include <nlohmann/json.hpp>

namespace ckpt::pytree {

PyTreeOptions parse_options(const std::string& options_json,
                            const PyTreeOptions& defaults) {
  PyTreeOptions out = defaults;
  try {
    nlohmann::json all = nlohmann::json::parse(options_json);
    if (!all.is_object() || !all.contains("pytree")) return out;
    const nlohmann::json& o = all["pytree"];
    if (!o.is_object())
      throw std::invalid_argument("\"pytree\" must be an object");
    out.load.partial_load = o.value("partial_load", out.load.partial_load);
    out.load.allow_shape_mismatch =
        o.value("allow_shape_mismatch", out.load.allow_shape_mismatch);
    out.verify_checksums = o.value("verify_checksums", out.verify_checksums);
    out.pack_threshold_bytes =
        o.value("pack_threshold_bytes", out.pack_threshold_bytes);
    out.storage.chunking = o.value("chunking", out.storage.chunking);
    if (o.contains("compression") && !o["compression"].is_null()) {
      const nlohmann::json& c = o["compression"];
      std::string type = c.is_string() ? c.get<std::string>()
                                       : c.at("type").get<std::string>();
      if (c.is_object()) out.storage.compression_level = c.value("level", 4);
      if (type != "gzip" && type != "none") {
        throw std::invalid_argument("unknown compression \"" + type +
                                    "\" (supported: gzip, none)");
      }
      if (out.storage.compression_level < 0 ||
          out.storage.compression_level > 9) {
        throw std::invalid_argument("gzip level must be 0..9");
      }
      out.storage.compression = type == "gzip" ? type : "";
    }
  } catch (const std::exception& e) {
    throw ckpt::sdk::Error(CKPT_ERROR_INVALID_ARGUMENT,
                           std::string("invalid pytree options: ") + e.what());
  }
  return out;
}

}  // namespace ckpt::pytree
