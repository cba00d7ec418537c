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
    if (o.contains("storage")) {
      const std::string storage = o["storage"].get<std::string>();
      if (storage != "ckpt" && storage != "orbax") {
        throw std::invalid_argument("unknown storage \"" + storage +
                                    "\" (supported: ckpt, orbax)");
      }
      out.orbax_storage = storage == "orbax";
    }
    if (o.contains("compression") && !o["compression"].is_null()) {
      const nlohmann::json& c = o["compression"];
      std::string type = c.is_string() ? c.get<std::string>()
                                       : c.at("type").get<std::string>();
      if (type != "gzip" && type != "zstd" && type != "none") {
        throw std::invalid_argument("unknown compression \"" + type +
                                    "\" (supported: gzip and none for "
                                    "ckpt's storage, zstd and none for "
                                    "Orbax's)");
      }
      if (type == "zstd") {
        if (c.is_object()) out.orbax.zstd_level = c.value("level", 3);
        if (out.orbax.zstd_level < 1 || out.orbax.zstd_level > 22) {
          throw std::invalid_argument("zstd level must be 1..22");
        }
      } else if (type == "gzip") {
        if (c.is_object()) out.storage.compression_level = c.value("level", 4);
        if (out.storage.compression_level < 0 ||
            out.storage.compression_level > 9) {
          throw std::invalid_argument("gzip level must be 0..9");
        }
      }
      out.storage.compression = type == "gzip" ? type : "";
      out.orbax.compress = type != "none";
      out.compression_named = type;
    }
    if (out.orbax_storage && out.compression_named == "gzip") {
      throw std::invalid_argument(
          "\"storage\": \"orbax\" compresses with zstd (or none), as "
          "Orbax does; gzip is for ckpt's HDF5 storage");
    }
    if (!out.orbax_storage && out.compression_named == "zstd") {
      throw std::invalid_argument(
          "zstd compression is for \"storage\": \"orbax\"; ckpt's HDF5 "
          "storage compresses with gzip");
    }
  } catch (const std::exception& e) {
    throw ckpt::sdk::Error(CKPT_ERROR_INVALID_ARGUMENT,
                           std::string("invalid pytree options: ") + e.what());
  }
  return out;
}

}  // namespace ckpt::pytree
