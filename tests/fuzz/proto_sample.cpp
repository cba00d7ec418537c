#include "proto_sample.h"

#include <limits>

namespace ckpt_fuzz {

ckpt::test::RunConfig sample_config() {
  ckpt::test::RunConfig config;
  config.set_name("run-7 \"Größe\" \\ \n");
  config.set_step(123456789012345);
  config.mutable_optimizer()->set_name("adam");
  config.mutable_optimizer()->set_learning_rate(3e-4);
  config.mutable_optimizer()->add_betas(0.9f);
  config.mutable_optimizer()->add_betas(0.999f);
  auto* warmup = config.add_schedule();
  warmup->set_name("warmup");
  warmup->set_learning_rate(1e-5);
  config.add_shape(8);
  config.add_shape(-1);
  config.add_tags("a");
  config.add_tags("b c");
  (*config.mutable_metrics())["loss"] = 0.25;
  (*config.mutable_metrics())["zeta"] = -1e300;
  (*config.mutable_optimizers_by_stage())[2].set_name("sgd");
  config.set_path("/data/train");
  config.set_phase(ckpt::test::PHASE_TRAIN);
  config.add_phases(ckpt::test::PHASE_WARMUP);
  config.add_phases(ckpt::test::PHASE_TRAIN);
  config.set_blob(std::string("\0\x01\xff bytes", 9));
  config.mutable_started()->set_seconds(1700000000);
  config.mutable_started()->set_nanos(5);
  config.mutable_budget()->set_seconds(3600);
  ckpt::test::Optimizer inner;
  inner.set_name("inside any");
  config.mutable_extra()->PackFrom(inner);
  auto& fields = *config.mutable_params()->mutable_fields();
  fields["depth"].set_number_value(12);
  fields["name"].set_string_value("transformer");
  fields["list"].mutable_list_value()->add_values()->set_bool_value(true);
  fields["none"].set_null_value(google::protobuf::NULL_VALUE);
  config.set_seed_override(0);
  config.set_big(std::numeric_limits<uint64_t>::max());
  config.set_offset(-5);
  config.set_checksum(0xdeadbeefcafef00dULL);
  config.set_ratio(0.5f);
  config.set_resume(true);
  return config;
}

ckpt::test::RunConfig small_config() {
  ckpt::test::RunConfig config;
  config.set_seed(42);
  config.set_note("");
  ckpt::test::Other other;
  other.set_label("other");
  other.set_count(3);
  config.mutable_extra()->PackFrom(other);
  return config;
}

}  // namespace ckpt_fuzz
