// ckpt::Checkpointer in a job of many processes: every process decides
// alike (the primary's decision, or any process's preemption notice), and
// only the primary deletes.
#include <ckpt/checkpointer.h>
#include <ckpt/context.h>
#include <ckpt/value.h>

#include <catch2/catch.hpp>
#include <vector>

#include "mpi_util.h"
#include "training/checkpoint_root.h"

using namespace mpi_test;

namespace {

// Says yes to odd steps on process 0 and to multiples of 3 elsewhere: the
// job must follow process 0.
class DisagreeingPolicy final : public ckpt::SaveDecisionPolicy {
 public:
  bool should_save(const ckpt::CheckpointStep& step,
                   const std::vector<ckpt::CheckpointStep>&,
                   const ckpt::DecisionContext&) const override {
    return me() == 0 ? step.step % 2 == 1 : step.step % 3 == 0;
  }
};

ckpt::Value tree_of(int64_t step) {
  return ckpt::Value::dict(
      {{"w", ckpt::Array::from<float>({1, 2, 3}, {3})}, {"step", step}});
}

std::vector<int64_t> steps_of(const std::vector<ckpt::CheckpointStep>& steps) {
  std::vector<int64_t> out;
  for (const auto& s : steps) out.push_back(s.step);
  return out;
}

}  // namespace

TEST_CASE(
    "every process of a job saves the steps the primary decides, and all "
    "see the same steps kept",
    "[mpi][checkpointer]") {
  SharedFolder shared("checkpointer");
  ckpt::Context context(mp_options());
  ckpt::CheckpointerOptions options;
  options.save_decision_policy = DisagreeingPolicy();
  options.preservation_policy = ckpt::LatestN(2);
  ckpt::Checkpointer checkpointer(shared.path() / "run", options);
  std::vector<int64_t> saved;
  for (int64_t step = 1; step <= 9; ++step) {
    if (checkpointer.save_pytree_async(step, tree_of(step))) {
      saved.push_back(step);
    }
  }
  checkpointer.close();
  CHECK(saved == std::vector<int64_t>{1, 3, 5, 7, 9});
  CHECK(steps_of(checkpointer.checkpoints()) == std::vector<int64_t>{7, 9});
  world()->barrier();
  ckpt::RootListing listing = ckpt::list_checkpoint_root(shared.path() / "run");
  REQUIRE(listing.steps.size() == 2);
  CHECK(listing.steps[0].checkpoint.step == 7);
  CHECK(listing.temporaries.empty());
  CHECK(checkpointer.load_pytree().at("step").as_int() == 9);
}

TEST_CASE(
    "a preemption notice on one process makes every process save the next "
    "step and may exit",
    "[mpi][checkpointer]") {
  SharedFolder shared("preemption");
  ckpt::Context context(mp_options());
  ckpt::CheckpointerOptions options;
  options.save_decision_policy = ckpt::SpecificStepsPolicy({});
  ckpt::Checkpointer checkpointer(shared.path() / "run", options);
  CHECK_FALSE(checkpointer.save_pytree_async(1, tree_of(1)));
  if (me() == count() - 1) ckpt::request_preemption();
  CHECK(checkpointer.save_pytree_async(2, tree_of(2)));
  CHECK(checkpointer.may_exit());
  CHECK(checkpointer.reached_preemption());
  REQUIRE(checkpointer.latest());
  CHECK(checkpointer.latest()->step == 2);
  // Saved for: no more saves for this notice.
  CHECK_FALSE(checkpointer.save_pytree_async(3, tree_of(3)));
  ckpt::internal::forget_preemption_notice();
}
