// Shared by the proto plugin tests: a message with every kind of field and
// small helpers.
#ifndef CKPT_TESTS_PROTO_SAMPLES_H_
#define CKPT_TESTS_PROTO_SAMPLES_H_

#include <ckpt/handler.h>
#include <ckpt/proto.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "ckpt_test.pb.h"

namespace ckpt::test {

inline constexpr const char* kProtoTypestr = "ckpt.proto.ProtoHandler";

inline HandlerPtr proto_handler(
    nlohmann::json config = nlohmann::json::object()) {
  return make_handler(kProtoTypestr, config);
}

// A RunConfig with every kind of field set, including values that text
// format has to escape or spell specially.
inline RunConfig sample_config() {
  RunConfig c;
  c.set_name("réseau — 学習 — 🚀 \"quoted\"\n");
  c.set_step(123456789012);
  Optimizer* optimizer = c.mutable_optimizer();
  optimizer->set_name("adam");
  optimizer->set_learning_rate(3e-4);
  optimizer->add_betas(0.9f);
  optimizer->add_betas(0.999f);
  Optimizer* warmup = c.add_schedule();
  warmup->set_name("warmup");
  warmup->set_learning_rate(1e-5);
  c.add_schedule()->set_name("cosine");
  for (int d : {2, 3, 4}) c.add_shape(d);
  c.add_tags("baseline");
  c.add_tags("");
  (*c.mutable_metrics())["loss"] = 0.25;
  (*c.mutable_metrics())["accuracy"] = 0.875;
  (*c.mutable_metrics())["zeta"] = -1e300;
  (*c.mutable_optimizers_by_stage())[2].set_name("sgd");
  (*c.mutable_optimizers_by_stage())[-1].set_learning_rate(0.5);
  c.set_path("/data/train");  // the oneof
  c.set_phase(PHASE_TRAIN);
  c.add_phases(PHASE_WARMUP);
  c.add_phases(PHASE_TRAIN);
  c.set_blob(std::string("\x00\x01\xff\xfe binary", 11));
  c.mutable_started()->set_seconds(1700000000);
  c.mutable_started()->set_nanos(123456789);
  c.mutable_budget()->set_seconds(3600);
  c.mutable_budget()->set_nanos(500);
  Optimizer packed;
  packed.set_name("packed in an Any");
  packed.set_learning_rate(2.0);
  c.mutable_extra()->PackFrom(packed);
  auto& fields = *c.mutable_params()->mutable_fields();
  fields["depth"].set_number_value(12);
  fields["activation"].set_string_value("gelu");
  fields["flags"].mutable_list_value()->add_values()->set_bool_value(true);
  fields["nothing"].set_null_value(google::protobuf::NULL_VALUE);
  c.set_seed_override(0);  // present, with the default value
  c.set_big(std::numeric_limits<uint64_t>::max());
  c.set_offset(-42);
  c.set_checksum(0xdeadbeefcafef00dULL);
  c.set_ratio(0.1f);
  c.set_resume(true);
  return c;
}

inline std::string wire_bytes(const google::protobuf::Message& message) {
  return serialize_deterministically(message);
}

// Expects `call` to throw ckpt error kind E whose message has every one of
// `parts`; returns the message.
template <class E, class F>
std::string expect_error(F call, const std::vector<std::string>& parts) {
  try {
    call();
  } catch (const E& e) {
    std::string message = e.what();
    INFO(message);
    for (const std::string& part : parts) {
      CHECK(message.find(part) != std::string::npos);
    }
    return message;
  }
  FAIL("expected an error containing " << parts.front());
  return "";
}

}  // namespace ckpt::test

#endif  // CKPT_TESTS_PROTO_SAMPLES_H_
