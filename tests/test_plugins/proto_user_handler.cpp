// A user's handler plugin that links generated code for the same .proto as
// the test host (tests/proto/ckpt_test.proto): it saves a ckpt.test.RunConfig
// as summary.txt (its name, a newline, its step) and loads it back as a
// RunConfig.
//
// The code is generated with protoc's `lite` option: lite messages do not
// register their .proto in protobuf's process-wide descriptor database, so
// this plugin and a host with the full generated code for the same file
// live in one process. (Full generated code in both would make protobuf
// abort at load time with "File already exists in database".)
#include <ckpt/sdk/files.h>
#include <ckpt/sdk/plugin.h>

#include <string>

#include "ckpt_test.pb.h"

namespace {

using ckpt::sdk::Error;

constexpr const char* kRunConfig = "ckpt.test.RunConfig";

bool is_run_config(const ckpt_value& value, ckpt_value_kind kind) {
  return value.kind == kind && value.proto != nullptr &&
         value.proto->full_name != nullptr &&
         std::string(value.proto->full_name) == kRunConfig;
}

class RunSummaryHandler final : public ckpt::sdk::Handler {
 public:
  explicit RunSummaryHandler(const std::string&) {}

  bool is_handleable(const ckpt_value& value) override {
    return is_run_config(value, CKPT_VALUE_PROTO);
  }
  ckpt_answer is_abstract_handleable(const ckpt_value& value) override {
    return is_run_config(value, CKPT_VALUE_PROTO_TYPE) ? CKPT_ANSWER_YES
                                                       : CKPT_ANSWER_NO;
  }

  ckpt::sdk::SaveWork save(const ckpt::sdk::Call& call, const ckpt_value& value,
                           ckpt::sdk::RetainedValue) override {
    ckpt::test::RunConfig config;
    if (!is_handleable(value) ||
        !config.ParseFromArray(value.proto->bytes,
                               static_cast<int>(value.proto->bytes_len))) {
      throw Error(CKPT_ERROR_INVALID_ARGUMENT, "not a ckpt.test.RunConfig");
    }
    std::string text = config.name() + "\n" + std::to_string(config.step());
    std::string path = call.directory + "/summary.txt";
    return [path, text, mode = call.file_mode] {
      ckpt::sdk::write_file(path, text, mode);
    };
  }

  ckpt::sdk::LoadWork load(const ckpt::sdk::Call& call,
                           const ckpt_value* abstract_value,
                           ckpt::sdk::RetainedValue) override {
    if (abstract_value == nullptr ||
        !is_run_config(*abstract_value, CKPT_VALUE_PROTO_TYPE)) {
      throw Error(CKPT_ERROR_INVALID_ARGUMENT, "load needs the RunConfig type");
    }
    std::string descriptor_set(
        reinterpret_cast<const char*>(abstract_value->proto->descriptor_set),
        abstract_value->proto->descriptor_set_len);
    std::string path = call.directory + "/summary.txt";
    return [path, descriptor_set] {
      std::string text;
      if (!ckpt::sdk::read_file_if_exists(path, text)) {
        throw Error(CKPT_ERROR_NOT_FOUND, "no " + path);
      }
      size_t newline = text.rfind('\n');
      if (newline == std::string::npos) {
        throw Error(CKPT_ERROR_DATA_LOSS, "bad summary " + path);
      }
      ckpt::test::RunConfig config;
      config.set_name(text.substr(0, newline));
      config.set_step(std::stoll(text.substr(newline + 1)));
      return ckpt::sdk::OutValue::proto(kRunConfig, config.SerializeAsString(),
                                        descriptor_set);
    };
  }
};

}  // namespace

CKPT_PLUGIN("proto-user", registrar) {
  registrar.handler_type<RunSummaryHandler>(
      "test.RunSummaryHandler", {}, "ckpt.test.RunConfig as summary.txt");
}
