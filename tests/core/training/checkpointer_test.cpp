// ckpt::Checkpointer and its policies (ckpt/checkpointer.h).
#include <ckpt/checkpointer.h>
#include <ckpt/errors.h>
#include <ckpt/layout.h>
#include <ckpt/stateful.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <future>
#include <thread>

#include "format/names.h"
#include "gated.h"
#include "save/save_owner.h"
#include "test_util.h"

using namespace ckpt;
using namespace ckpt::test;
using std::chrono::seconds;
using SystemClock = std::chrono::system_clock;

namespace {

const SystemClock::time_point kEpoch = SystemClock::time_point(seconds(1000));

// Committed steps at the given seconds after kEpoch, with a loss each
// (nullopt: no metrics).
std::vector<CheckpointStep> steps_table(
    const std::vector<std::tuple<int64_t, int, std::optional<double>>>& rows) {
  std::vector<CheckpointStep> steps;
  for (const auto& [step, at, loss] : rows) {
    CheckpointStep s;
    s.step = step;
    s.time = kEpoch + seconds(at);
    if (loss) s.metrics = {{"loss", *loss}};
    steps.push_back(s);
  }
  return steps;
}

std::vector<int64_t> kept(const PreservationPolicy& policy,
                          const std::vector<CheckpointStep>& steps) {
  const std::vector<bool> keep = policy.should_preserve(steps, {});
  REQUIRE(keep.size() == steps.size());
  std::vector<int64_t> out;
  for (size_t i = 0; i < steps.size(); ++i) {
    if (keep[i]) out.push_back(steps[i].step);
  }
  return out;
}

bool decides(const SaveDecisionPolicy& policy, int64_t step, int at,
             const std::vector<CheckpointStep>& previous,
             DecisionContext context = {}) {
  CheckpointStep s;
  s.step = step;
  s.time = kEpoch + seconds(at);
  return policy.should_save(s, previous, context);
}

Value tree_of(int64_t step) {
  return Value::dict(
      {{"x", Array::copy(DType::kInt64, {1}, &step)}, {"step", step}});
}

std::vector<int64_t> steps_of(const std::vector<CheckpointStep>& steps) {
  std::vector<int64_t> out;
  for (const auto& s : steps) out.push_back(s.step);
  return out;
}

std::vector<int64_t> steps_on_disk(const fs::path& root) {
  std::vector<int64_t> out;
  for (const auto& s : list_checkpoint_root(root).steps) {
    if (s.committed) out.push_back(s.checkpoint.step);
  }
  return out;
}

// The pid of a process that has ended.
int64_t dead_pid() {
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}

}  // namespace

// ---- Save decision policies ---------------------------------------------

TEST_CASE("save decision policies decide as Orbax's do", "[checkpointer]") {
  const auto none = steps_table({});
  const auto some = steps_table({{10, 0, 1.0}, {20, 60, 2.0}});
  DecisionContext saving;
  saving.is_saving_in_progress = true;
  DecisionContext preempted;
  preempted.reached_preemption = true;

  SECTION("FixedIntervalPolicy saves multiples of its interval") {
    FixedIntervalPolicy p(10);
    CHECK(decides(p, 30, 0, some));
    CHECK_FALSE(decides(p, 31, 0, some));
    CHECK(decides(p, 0, 0, none));
    CHECK(decides(p, 40, 0, some, saving));
    CHECK_THROWS_AS(FixedIntervalPolicy(0), InvalidArgumentError);
  }
  SECTION("SpecificStepsPolicy saves exactly its steps") {
    SpecificStepsPolicy p({7, 3, 100});
    CHECK(decides(p, 3, 0, none));
    CHECK(decides(p, 100, 0, some));
    CHECK_FALSE(decides(p, 4, 0, some));
  }
  SECTION("InitialSavePolicy saves only into an empty root") {
    InitialSavePolicy p;
    CHECK(decides(p, 5, 0, none));
    CHECK_FALSE(decides(p, 21, 0, some));
  }
  SECTION("PreemptionCheckpointingPolicy saves after a preemption notice") {
    PreemptionCheckpointingPolicy p;
    CHECK(decides(p, 21, 0, some, preempted));
    CHECK_FALSE(decides(p, 21, 0, some));
  }
  SECTION("ContinuousCheckpointingPolicy skips while a save is in flight") {
    ContinuousCheckpointingPolicy p;
    CHECK(decides(p, 21, 0, some));
    CHECK(decides(p, 1, 0, none));
    CHECK_FALSE(decides(p, 21, 0, some, saving));
    // With a minimum interval: counted from the newest committed step.
    ContinuousCheckpointingPolicy every_30s(30.0);
    CHECK(decides(every_30s, 21, 0, none));
    CHECK_FALSE(decides(every_30s, 21, 60 + 29, some));
    CHECK(decides(every_30s, 21, 60 + 30, some));
    CHECK_FALSE(decides(every_30s, 21, 60 + 300, some, saving));
  }
  SECTION("AnySavePolicy saves when any of its policies does") {
    AnySavePolicy p({FixedIntervalPolicy(10), SpecificStepsPolicy({33}),
                     PreemptionCheckpointingPolicy()});
    CHECK(decides(p, 30, 0, some));
    CHECK(decides(p, 33, 0, some));
    CHECK(decides(p, 34, 0, some, preempted));
    CHECK_FALSE(decides(p, 34, 0, some));
    AnySavePolicy empty({});
    CHECK_FALSE(decides(empty, 30, 0, some));
  }
}

// ---- Preservation policies ------------------------------------------------

TEST_CASE("preservation policies keep the steps Orbax's keep",
          "[checkpointer]") {
  // step, seconds after the epoch, loss
  const auto steps = steps_table({{1, 0, 5.0},
                                  {2, 10, 3.0},
                                  {3, 25, 4.0},
                                  {4, 40, 1.0},
                                  {5, 55, 2.0},
                                  {6, 61, 6.0}});
  CHECK(kept(PreserveAll(), steps) == std::vector<int64_t>{1, 2, 3, 4, 5, 6});
  CHECK(kept(LatestN(2), steps) == std::vector<int64_t>{5, 6});
  CHECK(kept(LatestN(0), steps).empty());
  CHECK(kept(LatestN(10), steps) == std::vector<int64_t>{1, 2, 3, 4, 5, 6});
  // The first step, then each at least 20 s after the last kept one.
  CHECK(kept(EveryNSeconds(20), steps) == std::vector<int64_t>{1, 3, 5});
  CHECK(kept(EveryNSteps(2), steps) == std::vector<int64_t>{2, 4, 6});
  CHECK(kept(CustomSteps({6, 1, 9}), steps) == std::vector<int64_t>{1, 6});
  // reverse = true keeps the smallest values (a loss); false the largest.
  CHECK(kept(BestN("loss", /*reverse=*/true, 2), steps) ==
        std::vector<int64_t>{4, 5});
  CHECK(kept(BestN("loss", /*reverse=*/false, 2), steps) ==
        std::vector<int64_t>{1, 6});
  CHECK(kept(BestN("loss", true, std::nullopt), steps).size() == 6);
  CHECK(kept(BestN("loss", true, 0), steps).empty());
  CHECK(kept(BestN(
                 [](const nlohmann::json& m) {
                   return -m.at("loss").get<double>();
                 },
                 /*reverse=*/false, 1),
             steps) == std::vector<int64_t>{4});
  CHECK(kept(AnyPreservationPolicy(
                 {LatestN(1), BestN("loss", true, 1), CustomSteps({2})}),
             steps) == std::vector<int64_t>{2, 4, 6});
  CHECK(kept(AnyPreservationPolicy({}), steps).empty());
  CHECK_THROWS_AS(EveryNSteps(0), InvalidArgumentError);
}

TEST_CASE(
    "EveryNSteps' exact_interval and max_to_keep, EveryNStepsClosest and "
    "LatestDuration keep the steps Orbax's keep",
    "[checkpointer]") {
  // Irregular steps; every expected list worked out by hand from
  // preservation_policy.py (orbax-checkpoint 0.12.8).
  std::vector<std::tuple<int64_t, int, std::optional<double>>> rows;
  for (int64_t step : {0, 7, 12, 15, 19, 25, 31, 38, 44}) {
    rows.emplace_back(step, 0, std::nullopt);
  }
  const auto steps = steps_table(rows);
  using V = std::vector<int64_t>;
  CHECK(kept(EveryNSteps(10), steps) == V{0});
  CHECK(kept(EveryNSteps(5), steps) == V{0, 15, 25});
  CHECK(kept(EveryNSteps(5, true, 2), steps) == V{15, 25});
  // Not exact: the first step, then each >= 10 steps after the last kept.
  CHECK(kept(EveryNSteps(10, false), steps) == V{0, 12, 25, 38});
  CHECK(kept(EveryNSteps(10, false, 2), steps) == V{25, 38});
  CHECK(kept(EveryNSteps(10, false, 0), steps).empty());
  // Closest to each multiple of 10: 0 (0), 12 (10), 19 (20: 15 and 25 are
  // 5 away, 19 is 1), 31 (30), 38 (40: 44 is 4 away); the newest always.
  CHECK(kept(EveryNStepsClosest(10), steps) == V{0, 12, 19, 31, 38, 44});
  CHECK(kept(EveryNStepsClosest(10, 3), steps) == V{31, 38, 44});
  // Equally close: the newer.
  CHECK(kept(EveryNStepsClosest(10), steps_table({{8, 0, {}}, {12, 0, {}}})) ==
        V{12});
  // Halves round to the even multiple, as Python's round(): 25 -> 20 and
  // 35 -> 40, so neither is the closest of a multiple of its own.
  CHECK(
      kept(EveryNStepsClosest(10),
           steps_table({{20, 0, {}}, {25, 0, {}}, {35, 0, {}}, {40, 0, {}}})) ==
      V{20, 40});
  CHECK(kept(EveryNStepsClosest(10), {}).empty());
  CHECK_THROWS_AS(EveryNStepsClosest(0), InvalidArgumentError);
  CHECK_THROWS_AS(EveryNSteps(-5, false), InvalidArgumentError);

  // LatestDuration: committed 5 h, 3 h, 1 h and 10 min ago.
  const auto now = SystemClock::now();
  std::vector<CheckpointStep> recent(4);
  const std::chrono::minutes ago[] = {
      std::chrono::minutes(300), std::chrono::minutes(180),
      std::chrono::minutes(60), std::chrono::minutes(10)};
  for (size_t i = 0; i < 4; ++i) {
    recent[i].step = static_cast<int64_t>(i + 1);
    recent[i].time = now - ago[i];
  }
  CHECK(kept(LatestDuration(std::chrono::hours(2)), recent) == V{3, 4});
  CHECK(kept(LatestDuration(std::chrono::hours(24)), recent) == V{1, 2, 3, 4});
  CHECK(kept(LatestDuration(std::chrono::seconds(0)), recent).empty());
  // Every step after the first recent one, even an older one (a clock
  // that went back).
  std::swap(recent[1].time, recent[3].time);
  CHECK(kept(LatestDuration(std::chrono::hours(2)), recent) == V{2, 3, 4});
  CHECK_THROWS_AS(LatestDuration(std::chrono::seconds(-1)),
                  InvalidArgumentError);
}

TEST_CASE(
    "BestN breaks ties in favour of the newer step and keeps steps without "
    "metrics unless told not to",
    "[checkpointer]") {
  const auto tied = steps_table(
      {{1, 0, 1.0}, {2, 1, 2.0}, {3, 2, 1.0}, {4, 3, 2.0}, {5, 4, 3.0}});
  CHECK(kept(BestN("loss", true, 1), tied) == std::vector<int64_t>{3});
  CHECK(kept(BestN("loss", true, 3), tied) == std::vector<int64_t>{1, 3, 4});
  CHECK(kept(BestN("loss", false, 2), tied) == std::vector<int64_t>{4, 5});

  auto missing = steps_table(
      {{1, 0, 4.0}, {2, 1, std::nullopt}, {3, 2, 1.0}, {4, 3, 2.0}});
  missing[3].metrics = {{"accuracy", 0.9}};  // metrics, but not this one
  CHECK(kept(BestN("loss", true, 1), missing) == std::vector<int64_t>{2, 3, 4});
  CHECK(kept(BestN("loss", true, 1, /*keep_checkpoints_without_metrics=*/false),
             missing) == std::vector<int64_t>{3});
}

TEST_CASE("step folders are named and recognised as Orbax names them",
          "[checkpointer]") {
  StepNameFormat plain;
  CHECK(plain.name(5) == "5");
  CHECK(plain.parse("5") == 5);
  CHECK(plain.parse("0") == 0);
  CHECK_FALSE(plain.parse("05"));
  CHECK_FALSE(plain.parse("5.orbax-checkpoint-tmp-1"));
  CHECK_FALSE(plain.parse("step_5"));
  CHECK_FALSE(plain.parse(""));
  CHECK_FALSE(plain.parse("99999999999999999999"));
  StepNameFormat prefixed{"ckpt", std::nullopt};
  CHECK(prefixed.name(5) == "ckpt_5");
  CHECK(prefixed.parse("ckpt_5") == 5);
  CHECK_FALSE(prefixed.parse("ckpt5"));
  CHECK_FALSE(prefixed.parse("5"));
  StepNameFormat padded{"", 8};
  CHECK(padded.name(5) == "00000005");
  CHECK(padded.parse("00000005") == 5);
  CHECK(padded.parse("123456789") == 123456789);
  CHECK_FALSE(padded.parse("5"));
  CHECK_FALSE(padded.parse("000000005"));
  StepNameFormat both{"ckpt", 8};
  CHECK(both.name(5) == "ckpt_00000005");
  CHECK(both.parse("ckpt_00000005") == 5);
  CHECK_THROWS_AS(plain.name(-1), InvalidArgumentError);
}

TEST_CASE("a step name format that could leave the root is refused",
          "[checkpointer]") {
  TempDir dir;
  for (const StepNameFormat& bad :
       {StepNameFormat{"../out", std::nullopt}, StepNameFormat{"a/b", 3},
        StepNameFormat{".hidden", std::nullopt},
        StepNameFormat{std::string("a\0b", 3), std::nullopt},
        StepNameFormat{"x.orbax-checkpoint-tmp", std::nullopt},
        StepNameFormat{std::string(200, 'p'), std::nullopt},
        StepNameFormat{"", 0}, StepNameFormat{"", 1000000}}) {
    CheckpointerOptions options;
    options.step_name_format = bad;
    CHECK_THROWS_AS(Checkpointer(dir / "run", options), InvalidArgumentError);
    CHECK_THROWS_AS(bad.name(1), InvalidArgumentError);
  }
  CHECK_FALSE(fs::exists(dir / "out"));
  CHECK_FALSE(fs::exists(dir / "run"));
}

// ---- The Checkpointer -----------------------------------------------------

TEST_CASE(
    "a checkpointer saves by its policy, keeps the latest 3 and the best 2 "
    "by loss, and deletes the rest",
    "[checkpointer]") {
  TempDir dir;
  const fs::path root = dir / "run";
  CheckpointerOptions options;
  options.save_decision_policy = FixedIntervalPolicy(10);
  options.preservation_policy =
      AnyPreservationPolicy({LatestN(3), BestN("loss", /*reverse=*/true, 2)});
  // loss by step: best are 20 (0.5) and 40 (0.7)
  const std::map<int64_t, double> loss = {{10, 3.0}, {20, 0.5}, {30, 2.0},
                                          {40, 0.7}, {50, 4.0}, {60, 5.0},
                                          {70, 6.0}, {80, 1.0}};
  {
    Checkpointer checkpointer(root, options);
    for (int64_t step = 1; step <= 80; ++step) {
      const bool due = step % 10 == 0;
      CHECK(checkpointer.should_save(step) == due);
      const bool saved = checkpointer.save_pytree_async(
          step, tree_of(step),
          due ? std::optional<nlohmann::json>(
                    nlohmann::json{{"loss", loss.at(step)}})
              : std::nullopt);
      CHECK(saved == due);
    }
    checkpointer.close();
    CHECK(steps_of(checkpointer.checkpoints()) ==
          std::vector<int64_t>{20, 40, 60, 70, 80});
    CHECK(checkpointer.latest()->step == 80);
    CHECK(checkpointer.latest()->metrics == nlohmann::json{{"loss", 1.0}});
    // Sizes are measured only when asked for: a root opens without
    // walking every file.
    CHECK_FALSE(checkpointer.latest()->size_bytes);
    const RootListing sized =
        list_checkpoint_root(root, std::nullopt, /*with_sizes=*/true);
    CHECK(sized.steps.back().checkpoint.size_bytes.value_or(0) > 0);
    CHECK(checkpointer.latest()->path == root / "80");
  }
  CHECK(steps_on_disk(root) == std::vector<int64_t>{20, 40, 60, 70, 80});
  CHECK(list_checkpoint_root(root).temporaries.empty());

  SECTION("a new checkpointer on the root keeps the policies' view") {
    Checkpointer again(root, options);
    CHECK(steps_of(again.checkpoints()) ==
          std::vector<int64_t>{20, 40, 60, 70, 80});
    CHECK(again.checkpoints()[0].metrics == nlohmann::json{{"loss", 0.5}});
    // Saving 90 (worst loss) drops 60: 70, 80, 90 are the latest, 20 and 40
    // the best by loss, read back from disk.
    CHECK_FALSE(again.should_save(80));  // not newer than the latest
    CHECK(again.save_pytree(90, tree_of(90), nlohmann::json{{"loss", 9.0}}));
    CHECK(steps_of(again.checkpoints()) ==
          std::vector<int64_t>{20, 40, 70, 80, 90});
    CHECK(steps_on_disk(root) == std::vector<int64_t>{20, 40, 70, 80, 90});
    CHECK(again.load_pytree().at("step").as_int() == 90);
    CHECK(again.load_pytree(20).at("step").as_int() == 20);
    CHECK_THROWS_AS(again.load_pytree(60), NotFoundError);
    CHECK_THAT(message_of<NotFoundError>([&] { again.load_pytree(60); }),
               Catch::Contains("step 60") && Catch::Contains(root.string()));
  }
  SECTION("saving an existing step is refused, also when forced") {
    Checkpointer again(root, options);
    CHECK_THROWS_AS(again.save_pytree(80, tree_of(80), std::nullopt, true),
                    AlreadyExistsError);
    CHECK_THAT(message_of<AlreadyExistsError>(
                   [&] { again.save_pytree(20, tree_of(20)); }),
               Catch::Contains("step 20 already exists"));
  }
  SECTION("force saves a step the policy would skip") {
    Checkpointer again(root, options);
    CHECK_FALSE(again.save_pytree(81, tree_of(81)));
    CHECK(again.save_pytree(81, tree_of(81), std::nullopt, /*force=*/true));
    CHECK(again.latest()->step == 81);
  }
}

TEST_CASE("the newest committed step is never deleted, whatever the policy",
          "[checkpointer]") {
  TempDir dir;
  CheckpointerOptions options;
  options.save_decision_policy = ContinuousCheckpointingPolicy();
  options.preservation_policy = BestN("loss", /*reverse=*/true, 1);
  Checkpointer checkpointer(dir / "run", options);
  CHECK(checkpointer.save_pytree(1, tree_of(1), nlohmann::json{{"loss", 1.0}}));
  CHECK(checkpointer.save_pytree(2, tree_of(2), nlohmann::json{{"loss", 5.0}}));
  // Orbax would delete step 2 here (its loss is not the best).
  CHECK(steps_of(checkpointer.checkpoints()) == std::vector<int64_t>{1, 2});
  CHECK(checkpointer.save_pytree(3, tree_of(3), nlohmann::json{{"loss", 7.0}}));
  CHECK(steps_of(checkpointer.checkpoints()) == std::vector<int64_t>{1, 3});
  CHECK(steps_on_disk(dir / "run") == std::vector<int64_t>{1, 3});
}

namespace {

// A stateful checkpointable whose load waits until released.
class BlockingState : public StatefulCheckpointable {
 public:
  std::promise<void> started;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();

  BackgroundWork save(const fs::path& dir) override {
    return [dir] { write_text(dir / "state", "s"); };
  }
  BackgroundWork load(const fs::path&) override {
    return [this] {
      started.set_value();
      released.wait();
    };
  }
};

}  // namespace

// What a save decision policy was shown, last call.
struct Recording : SaveDecisionPolicy {
  std::shared_ptr<std::vector<CheckpointStep>> seen =
      std::make_shared<std::vector<CheckpointStep>>();
  bool should_save(const CheckpointStep&,
                   const std::vector<CheckpointStep>& previous,
                   const DecisionContext&) const override {
    *seen = previous;
    return false;
  }
};

TEST_CASE(
    "the default policies skip a step while the first save is in flight, "
    "without blocking",
    "[checkpointer]") {
  TempDir dir;
  const fs::path root = dir / "run";
  auto gated = std::make_shared<Gated>();
  gated->value = 1;
  Checkpointer checkpointer(root);  // initial + continuous + preemption
  REQUIRE(checkpointer.save_checkpointables_async(
      1, {{"x", Value::stateful(gated)}}));
  // Step 1 is in flight until the gate opens: Orbax's InitialSavePolicy
  // sees it (the root is no longer empty) and the continuous policy sees a
  // save in progress, so step 2 is skipped at once.
  std::future<bool> second = std::async(std::launch::async, [&] {
    return checkpointer.save_pytree_async(2, tree_of(2));
  });
  const bool returned =
      second.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  gated->open();
  CHECK(returned);
  CHECK_FALSE(second.get());
  checkpointer.wait();
  CHECK(steps_of(checkpointer.checkpoints()) == std::vector<int64_t>{1});
  // Once it committed, the continuous policy saves again.
  CHECK(checkpointer.save_pytree(3, tree_of(3)));
  CHECK(steps_of(checkpointer.checkpoints()) == std::vector<int64_t>{1, 3});

  SECTION("a policy tells the step in flight from the committed ones") {
    Recording recording;
    CheckpointerOptions options;
    options.save_decision_policy = recording;
    Checkpointer custom(dir / "custom", options);
    auto slow = std::make_shared<Gated>();
    REQUIRE(custom.save_checkpointables_async(7, {{"x", Value::stateful(slow)}},
                                              std::nullopt, /*force=*/true));
    CHECK_FALSE(custom.save_pytree(8, tree_of(8)));
    REQUIRE(recording.seen->size() == 1);
    CHECK(recording.seen->at(0).step == 7);
    CHECK(recording.seen->at(0).in_flight);
    slow->open();
    custom.wait();
    CHECK_FALSE(custom.save_pytree(9, tree_of(9)));
    REQUIRE(recording.seen->size() == 1);
    CHECK_FALSE(recording.seen->at(0).in_flight);
  }
}

TEST_CASE(
    "overwrite replaces a step, the old one loadable until the new commits",
    "[checkpointer]") {
  TempDir dir;
  const fs::path root = dir / "run";
  Checkpointer checkpointer(root);  // initial + continuous + preemption
  REQUIRE(checkpointer.save_pytree(1, tree_of(1)));
  CHECK_THROWS_AS(checkpointer.save_pytree(1, tree_of(1)), AlreadyExistsError);
  StepSaveOptions overwrite;
  overwrite.overwrite = true;
  // The policies decide as if step 1 were not there: the initial save.
  CHECK(checkpointer.save_pytree(1, tree_of(7), overwrite));
  CHECK(checkpointer.load_pytree(1).at("step").as_int() == 7);
  CHECK(steps_of(checkpointer.checkpoints()) == std::vector<int64_t>{1});
  REQUIRE(checkpointer.save_pytree(2, tree_of(2)));
  // Step 1 is older than step 2: no policy saves it, and unlike Orbax
  // (which deletes first) the old step 1 stays.
  CHECK_FALSE(checkpointer.save_pytree(1, tree_of(8), overwrite));
  CHECK(checkpointer.load_pytree(1).at("step").as_int() == 7);

  SECTION("forced, async: the old step loads while the new is in flight") {
    auto gated = std::make_shared<Gated>();
    gated->value = 11;
    overwrite.force = true;
    REQUIRE(checkpointer.save_checkpointables_async(
        1, {{"x", Value::stateful(gated)}}, overwrite));
    CHECK(checkpointer.load_pytree(1).at("step").as_int() == 7);
    gated->open();
    checkpointer.wait();
    CHECK(checkpointer.checkpointables_metadata(1).checkpoint.typestr_of("x"));
    CHECK(steps_of(checkpointer.checkpoints()) == std::vector<int64_t>{1, 2});
    CHECK(steps_on_disk(root) == std::vector<int64_t>{1, 2});
  }
  SECTION("a step in flight is waited for, then replaced") {
    auto gated = std::make_shared<Gated>();
    REQUIRE(checkpointer.save_checkpointables_async(
        3, {{"x", Value::stateful(gated)}}, std::nullopt, /*force=*/true));
    std::thread opener([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      gated->open();
    });
    overwrite.force = true;
    CHECK(checkpointer.save_pytree(3, tree_of(33), overwrite));
    opener.join();
    CHECK(checkpointer.load_pytree(3).at("step").as_int() == 33);
    CHECK(steps_of(checkpointer.checkpoints()) ==
          std::vector<int64_t>{1, 2, 3});
  }
}

TEST_CASE(
    "a step's metadata without loading it; custom metadata per step, and "
    "the root's once",
    "[checkpointer]") {
  TempDir dir;
  const fs::path root = dir / "run";
  CheckpointerOptions options;
  options.custom_metadata = {{"run", "alpha"}};
  {
    Checkpointer checkpointer(root, options);
    CHECK(fs::is_regular_file(root / "metadata" / "_ROOT_METADATA"));
    CHECK(checkpointer.root_metadata().custom_metadata ==
          nlohmann::json{{"run", "alpha"}});
    StepSaveOptions step;
    step.custom_metadata = {{"note", "first"}};
    step.metrics = nlohmann::json{{"loss", 0.5}};
    REQUIRE(checkpointer.save_pytree(1, tree_of(1), step));
    const Metadata m = checkpointer.metadata(1);
    CHECK(m.checkpoint.custom_metadata == nlohmann::json{{"note", "first"}});
    CHECK(m.checkpoint.metrics == nlohmann::json{{"loss", 0.5}});
    CHECK(m.metadata.find("step") != nullptr);
    CHECK(checkpointer.metadata().checkpoint.path == root / "1");
    const CheckpointablesMetadata all =
        checkpointer.checkpointables_metadata(1);
    REQUIRE_FALSE(all.metadata.empty());
    CHECK(all.metadata.at(0).first == "state");
    CHECK_THROWS_AS(checkpointer.metadata(9), NotFoundError);
    StepSaveOptions not_object;
    not_object.custom_metadata = nlohmann::json::array({1});
    CHECK_THROWS_AS(checkpointer.save_pytree(2, tree_of(2), not_object),
                    InvalidArgumentError);
  }
  // A root keeps what its first run wrote; the metadata folder is no step.
  options.custom_metadata = {{"run", "beta"}};
  Checkpointer again(root, options);
  CHECK(again.root_metadata().custom_metadata ==
        nlohmann::json{{"run", "alpha"}});
  CHECK(steps_of(again.checkpoints()) == std::vector<int64_t>{1});
  CHECK(again.metadata().checkpoint.custom_metadata ==
        nlohmann::json{{"note", "first"}});

  SECTION("Orbax's root metadata: unknown keys join the custom metadata") {
    fs::remove(root / "metadata" / "_ROOT_METADATA");
    write_text(root / "metadata" / "_ROOT_METADATA",
               R"({"internal_metadata": {}, "custom_metadata": {"a": 1},)"
               R"( "extra": 2})");
    CHECK(again.root_metadata().custom_metadata ==
          nlohmann::json{{"a", 1}, {"extra", 2}});
  }
  SECTION("none: empty") {
    Checkpointer plain(dir / "plain");
    CHECK(plain.root_metadata().custom_metadata.empty());
    CHECK_FALSE(fs::exists(dir / "plain" / "metadata"));
  }
  SECTION("damaged: a data loss error naming the file") {
    fs::remove(root / "metadata" / "_ROOT_METADATA");
    write_text(root / "metadata" / "_ROOT_METADATA", "{\"custom_metadata\": [");
    try {
      again.root_metadata();
      FAIL("no error");
    } catch (const DataLossError& e) {
      CHECK_THAT(e.what(), Catch::Contains("_ROOT_METADATA"));
    }
  }
}

TEST_CASE("a step being loaded is deleted only after its load ends",
          "[checkpointer]") {
  TempDir dir;
  CheckpointerOptions options;
  options.save_decision_policy = ContinuousCheckpointingPolicy();
  options.preservation_policy = LatestN(1);
  Checkpointer checkpointer(dir / "run", options);
  auto state = std::make_shared<BlockingState>();
  REQUIRE(checkpointer.save_checkpointables(
      1, {{"s", Value::stateful(state)}, {"t", tree_of(1)}}));
  auto loading = std::async(std::launch::async, [&] {
    return checkpointer.load_checkpointables(1,
                                             {{"s", Value::stateful(state)}});
  });
  state->started.get_future().wait();
  REQUIRE(checkpointer.save_pytree(2, tree_of(2)));
  // Step 1 is not kept, but it is being loaded: it stays for now.
  CHECK(steps_on_disk(dir / "run") == std::vector<int64_t>{1, 2});
  state->release.set_value();
  loading.get();
  REQUIRE(checkpointer.save_pytree(3, tree_of(3)));
  CHECK(steps_on_disk(dir / "run") == std::vector<int64_t>{3});
}

TEST_CASE(
    "opening a root removes the temporary folders of dead saves of this "
    "host and reports the others",
    "[checkpointer]") {
  TempDir dir;
  const fs::path root = dir / "run";
  fs::create_directories(root);
  const internal::SaveOwner& me = internal::this_owner();
  auto make = [&](const std::string& name,
                  std::optional<internal::SaveOwner> owner) {
    fs::create_directories(root / name / "state");
    write_text(root / name / "state" / "data", "partial");
    if (owner) {
      write_text(root / name / internal::kOwnerFile,
                 internal::owner_record_text(*owner));
    }
    return root / name;
  };
  internal::SaveOwner dead = me;
  dead.pid = dead_pid();
  dead.start_ticks.reset();
  internal::SaveOwner other_host = dead;
  other_host.host = me.host + "-elsewhere";
  internal::SaveOwner other_boot = dead;
  other_boot.boot_id = "00000000-0000-0000-0000-000000000000";
  internal::SaveOwner reused = me;  // this pid, but another process's start
  reused.start_ticks = me.start_ticks.value_or(0) + 12345;

  const fs::path gone = make("7.orbax-checkpoint-tmp-1-2-3-abcdef01", dead);
  const fs::path reused_pid =
      make("8.orbax-checkpoint-tmp-1-2-3-abcdef01", reused);
  const fs::path alive = make("9.orbax-checkpoint-tmp-1-2-3-abcdef01", me);
  const fs::path elsewhere =
      make("10.orbax-checkpoint-tmp-1-2-3-abcdef01", other_host);
  const fs::path before_boot =
      make("11.orbax-checkpoint-tmp-1-2-3-abcdef01", other_boot);
  const fs::path orbax = make("12.orbax-checkpoint-tmp", std::nullopt);
  // No record (the save died right after making the folder): the name says
  // the pid and this host and boot.
  const std::string tag = internal::host_boot_tag(me.host, me.boot_id);
  const fs::path unrecorded = make(
      "13.orbax-checkpoint-tmp-1-" + std::to_string(dead.pid) + "-0-" + tag,
      std::nullopt);
  const fs::path unrecorded_alive =
      make("14.orbax-checkpoint-tmp-1-" + std::to_string(me.pid) + "-0-" + tag,
           std::nullopt);
  const fs::path garbage = make("15.orbax-checkpoint-tmp-x", std::nullopt);
  write_text(garbage / internal::kOwnerFile, std::string(100000, '{'));

  const RootListing before = list_checkpoint_root(root);
  std::map<std::string, TemporaryFolder::Owner> owners;
  for (const auto& t : before.temporaries) owners[t.path.filename()] = t.owner;
  CHECK(owners.at(gone.filename()) == TemporaryFolder::Owner::kGone);
  CHECK(owners.at(reused_pid.filename()) == TemporaryFolder::Owner::kGone);
  CHECK(owners.at(alive.filename()) == TemporaryFolder::Owner::kAlive);
  CHECK(owners.at(elsewhere.filename()) == TemporaryFolder::Owner::kOtherHost);
  CHECK(owners.at(before_boot.filename()) ==
        TemporaryFolder::Owner::kOtherBoot);
  CHECK(owners.at(orbax.filename()) == TemporaryFolder::Owner::kUnknown);
  CHECK(owners.at(unrecorded.filename()) == TemporaryFolder::Owner::kGone);
  CHECK(owners.at(unrecorded_alive.filename()) ==
        TemporaryFolder::Owner::kAlive);
  CHECK(owners.at(garbage.filename()) == TemporaryFolder::Owner::kUnknown);

  Checkpointer checkpointer(root);
  CHECK_FALSE(fs::exists(gone));
  CHECK_FALSE(fs::exists(reused_pid));
  CHECK_FALSE(fs::exists(unrecorded));
  for (const fs::path& kept :
       {alive, elsewhere, before_boot, orbax, unrecorded_alive, garbage}) {
    CHECK(fs::exists(kept));
  }
  CHECK(checkpointer.leftover_temporaries().size() == 6);
  for (const auto& t : checkpointer.leftover_temporaries()) {
    if (t.path == elsewhere) {
      CHECK_THAT(t.owner_description, Catch::Contains("-elsewhere"));
    }
  }
  // A leftover never blocks a save of its step.
  CHECK(checkpointer.save_pytree(9, tree_of(9), std::nullopt, true));

  SECTION("unless told not to") {
    const fs::path another =
        make("20.orbax-checkpoint-tmp-1-2-3-abcdef01", dead);
    CheckpointerOptions keep;
    keep.cleanup_temporary_folders = false;
    Checkpointer untouched(root, keep);
    CHECK(fs::exists(another));
  }
}

TEST_CASE("a save whose process died but is not reaped yet (a zombie) is dead",
          "[checkpointer]") {
  TempDir dir;
  const fs::path root = dir / "run";
  // A child killed during a save, not yet reaped by its parent (as mpirun
  // leaves rank 0 for a moment): kill(pid, 0) and its start time succeed.
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  const std::string stat = "/proc/" + std::to_string(child) + "/stat";
  auto state = [&] {
    const std::string text = read_text(stat);
    const size_t close = text.rfind(')');
    return close + 2 < text.size() ? text[close + 2] : '?';
  };
  for (int i = 0; i < 2000 && state() != 'Z'; ++i) ::usleep(1000);
  REQUIRE(state() == 'Z');
  internal::SaveOwner zombie = internal::this_owner();
  zombie.pid = child;
  zombie.start_ticks = internal::start_ticks_of(child);
  REQUIRE(zombie.start_ticks);
  const fs::path folder = root / "3.orbax-checkpoint-tmp-1-2-3-abcdef01";
  fs::create_directories(folder / "state");
  write_text(folder / internal::kOwnerFile,
             internal::owner_record_text(zombie));

  const RootListing listing = list_checkpoint_root(root);
  REQUIRE(listing.temporaries.size() == 1);
  CHECK(listing.temporaries[0].owner == TemporaryFolder::Owner::kGone);
  Checkpointer checkpointer(root);
  CHECK_FALSE(fs::exists(folder));
  int status = 0;
  ::waitpid(child, &status, 0);
}

TEST_CASE("a root written in Orbax's step naming lists and loads",
          "[checkpointer]") {
  TempDir dir;
  const fs::path root = dir / "orbax_run";
  const fs::path fixture =
      fs::path(CKPT_SOURCE_ROOT) / ".." / "shared" / "fixtures" / "orbax" /
      "v1_checkpoints" / "composite_checkpoint" /
      "checkpoint_metadata_present" / "pytree_checkpointable_has_metadata";
  for (const char* step : {"0", "1", "2"}) {
    fs::create_directories(root);
    fs::copy(fixture, root / step, fs::copy_options::recursive);
  }
  // Python Orbax writes metrics only as the metrics checkpointable.
  fs::create_directories(root / "2" / "metrics");
  write_text(root / "2" / "metrics" / "metrics", R"({"loss": 0.25})");
  fs::create_directories(root / "1.orbax-checkpoint-tmp");  // Orbax's own
  fs::create_directories(root / "not_a_step");
  Checkpointer checkpointer(root);
  CHECK(steps_of(checkpointer.checkpoints()) == std::vector<int64_t>{0, 1, 2});
  // Orbax records its commit time: it is the step's time.
  CHECK(checkpointer.latest()->time.time_since_epoch() ==
        std::chrono::duration_cast<SystemClock::duration>(
            std::chrono::nanoseconds(1778718403065544708LL)));
  CHECK(checkpointer.latest()->metrics == nlohmann::json{{"loss", 0.25}});
  CHECK(checkpointer.checkpoints()[0].metrics.is_null());
  const Checkpointables parts =
      checkpointer.load_checkpointables(1, {{"metadata", Value()}});
  CHECK(parts[0].second.kind() == Value::Kind::kJson);
  CHECK(checkpointer.leftover_temporaries().size() == 1);
  CHECK_FALSE(checkpointer.should_save(2));
  CHECK(checkpointer.should_save(3));
}

TEST_CASE("ckpt steps in Orbax's prefixed, zero-padded naming",
          "[checkpointer]") {
  TempDir dir;
  const fs::path root = dir / "run";
  CheckpointerOptions options;
  options.step_name_format = StepNameFormat{"ckpt", 8};
  options.save_decision_policy = ContinuousCheckpointingPolicy();
  {
    Checkpointer checkpointer(root, options);
    CHECK(checkpointer.save_pytree(7, tree_of(7)));
    CHECK(checkpointer.save_pytree(12, tree_of(12)));
    CHECK(checkpointer.latest()->path == root / "ckpt_00000012");
  }
  CHECK(fs::is_directory(root / "ckpt_00000007"));
  // Found without being told the format.
  const RootListing listing = list_checkpoint_root(root);
  CHECK(listing.format.prefix == "ckpt");
  CHECK(listing.format.fixed_length == 8);
  REQUIRE(listing.steps.size() == 2);
  CHECK(listing.steps[1].checkpoint.step == 12);
  // A checkpointer with another format sees none of them.
  Checkpointer plain(root);
  CHECK(plain.checkpoints().empty());
  CHECK_THROWS_AS(plain.load_pytree(), NotFoundError);
}

TEST_CASE("a step folder that is no complete checkpoint is listed as such",
          "[checkpointer]") {
  TempDir dir;
  const fs::path root = dir / "run";
  {
    Checkpointer checkpointer(root);
    CHECK(checkpointer.save_pytree(1, tree_of(1)));
  }
  fs::create_directories(root / "2" / "state");  // no _CHECKPOINT_METADATA
  const RootListing listing = list_checkpoint_root(root);
  REQUIRE(listing.steps.size() == 2);
  CHECK(listing.steps[0].committed);
  CHECK_FALSE(listing.steps[1].committed);
  CHECK_FALSE(listing.steps[1].problem.empty());
  Checkpointer checkpointer(root);
  CHECK(checkpointer.latest()->step == 1);
  // Its folder is in the way of a save of step 2.
  CHECK_THROWS_AS(checkpointer.save_pytree(2, tree_of(2)), AlreadyExistsError);

  CHECK_THROWS_AS(list_checkpoint_root(dir / "absent"), NotFoundError);
}

TEST_CASE("metrics must be a JSON object", "[checkpointer]") {
  TempDir dir;
  Checkpointer checkpointer(dir / "run");
  CHECK_THROWS_AS(checkpointer.save_pytree(1, tree_of(1), nlohmann::json(3)),
                  InvalidArgumentError);
}

// ---- Opening a large root --------------------------------------------------

namespace {

// Keeps every step, records what it was given, and says it reads nothing
// but step numbers (or, `details`, everything).
class RecordingPolicy final : public PreservationPolicy {
 public:
  RecordingPolicy(std::shared_ptr<std::vector<CheckpointStep>> seen,
                  bool details)
      : seen_(std::move(seen)), details_(details) {}
  std::vector<bool> should_preserve(const std::vector<CheckpointStep>& steps,
                                    const PreservationContext&) const override {
    *seen_ = steps;
    return std::vector<bool>(steps.size(), true);
  }
  bool reads_older_step_details() const override { return details_; }

 private:
  std::shared_ptr<std::vector<CheckpointStep>> seen_;
  bool details_;
};

void save_steps_with_loss(const fs::path& root, int64_t first, int64_t last) {
  Checkpointer checkpointer(root);
  for (int64_t step = first; step <= last; ++step) {
    REQUIRE(checkpointer.save_pytree(
        step, tree_of(step), nlohmann::json{{"loss", step}}, /*force=*/true));
  }
}

// Makes step folder `step` of `root` no whole checkpoint: its
// _CHECKPOINT_METADATA no longer matches its record.
void damage_step(const fs::path& root, int64_t step) {
  const fs::path file =
      root / std::to_string(step) / std::string(kCheckpointMetadataFile);
  REQUIRE(fs::exists(file));
  std::ofstream(file, std::ios::binary | std::ios::trunc) << "{\"damaged\": 1}";
}

}  // namespace

TEST_CASE("a Checkpointer opens a root reading only its newest step",
          "[checkpointer]") {
  TempDir dir;
  const fs::path root = dir / "run";
  save_steps_with_loss(root, 1, 3);

  auto seen = std::make_shared<std::vector<CheckpointStep>>();
  CheckpointerOptions options;
  options.preservation_policy = RecordingPolicy(seen, /*details=*/false);
  Checkpointer checkpointer(root, options);
  // The newest step is read at once: its time and metrics are real.
  REQUIRE(checkpointer.latest());
  CHECK(checkpointer.latest()->step == 3);
  CHECK(checkpointer.latest()->metrics == nlohmann::json{{"loss", 3}});
  REQUIRE(checkpointer.save_pytree(4, tree_of(4), nlohmann::json{{"loss", 4}},
                                   true));
  // A policy that reads step numbers only is given the older steps unread.
  REQUIRE(steps_of(*seen) == std::vector<int64_t>{1, 2, 3, 4});
  CHECK((*seen)[0].metrics.is_null());
  CHECK((*seen)[0].time == SystemClock::time_point{});
  CHECK((*seen)[2].metrics == nlohmann::json{{"loss", 3}});
  CHECK((*seen)[3].metrics == nlohmann::json{{"loss", 4}});
  // checkpoints() reads them all, as a full read of the root would.
  const std::vector<CheckpointStep> all = checkpointer.checkpoints();
  REQUIRE(steps_of(all) == std::vector<int64_t>{1, 2, 3, 4});
  for (const CheckpointStep& step : all) {
    CHECK(step.metrics == nlohmann::json{{"loss", step.step}});
    CHECK(step.time > SystemClock::time_point{});
  }

  // A policy that reads times or metrics is given every step read.
  CheckpointerOptions reading;
  reading.preservation_policy = RecordingPolicy(seen, /*details=*/true);
  Checkpointer reopened(root, reading);
  REQUIRE(
      reopened.save_pytree(5, tree_of(5), nlohmann::json{{"loss", 5}}, true));
  REQUIRE(steps_of(*seen) == std::vector<int64_t>{1, 2, 3, 4, 5});
  for (const CheckpointStep& step : *seen) {
    CHECK(step.metrics == nlohmann::json{{"loss", step.step}});
  }
}

TEST_CASE("a root read lazily keeps and deletes what a full read would",
          "[checkpointer]") {
  TempDir dir;
  const fs::path root = dir / "run";
  save_steps_with_loss(root, 1, 5);
  damage_step(root, 4);

  CheckpointerOptions options;
  options.preservation_policy = LatestN(2);
  {
    Checkpointer checkpointer(root, options);
    REQUIRE(checkpointer.save_pytree(6, tree_of(6), std::nullopt, true));
    // Step 4 is no checkpoint: the newest two are 5 and 6, and step 4's
    // folder is left alone, as when every step is read at the open.
    CHECK(steps_of(checkpointer.checkpoints()) == std::vector<int64_t>{5, 6});
  }
  CHECK(steps_on_disk(root) == std::vector<int64_t>{5, 6});
  CHECK(fs::exists(root / "4"));

  // A damaged newest step: the one before it is the latest.
  damage_step(root, 6);
  Checkpointer checkpointer(root, options);
  REQUIRE(checkpointer.latest());
  CHECK(checkpointer.latest()->step == 5);
  CHECK(checkpointer.latest()->metrics == nlohmann::json{{"loss", 5}});
  CHECK(checkpointer.load_pytree().at("step").as_int() == 5);
}

// ---- Policies as JSON (ckpt ls) ---------------------------------------------

TEST_CASE("preservation policies round-trip through JSON and keep alike",
          "[checkpointer]") {
  const auto steps = steps_table({{0, 0, 0.9},
                                  {100, 50, 0.4},
                                  {210, 100, std::nullopt},
                                  {300, 7200, 0.2},
                                  {395, 7300, 0.7},
                                  {500, 9000, 0.1}});
  const std::vector<PreservationPolicyRef> policies = {
      PreserveAll(),
      LatestN(2),
      EveryNSeconds(3600),
      EveryNSteps(100),
      EveryNSteps(100, /*exact_interval=*/false, /*max_to_keep=*/2),
      EveryNStepsClosest(100, 3),
      LatestDuration(std::chrono::hours(24 * 365 * 100)),
      CustomSteps({100, 395}),
      BestN("loss", /*reverse=*/true, /*n=*/2),
      BestN("loss", false, 1, /*keep_checkpoints_without_metrics=*/false),
      AnyPreservationPolicy({LatestN(1), BestN("loss", true, 1)}),
  };
  for (const PreservationPolicyRef& policy : policies) {
    const nlohmann::json j = policy->to_json();
    INFO(j.dump());
    REQUIRE(j.is_object());
    const PreservationPolicyRef back = preservation_policy_from_json(j);
    CHECK(back->to_json() == j);
    CHECK(kept(*back, steps) == kept(*policy, steps));
  }
  // What JSON cannot describe says so, and an Any of it too.
  const BestN by_function(
      [](const nlohmann::json& m) { return m.at("x").get<double>(); });
  CHECK(by_function.to_json().is_null());
  CHECK(AnyPreservationPolicy({LatestN(1), by_function}).to_json().is_null());
}

TEST_CASE("a preservation policy's bad JSON names the member",
          "[checkpointer]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"([1])", "must be a JSON object"},
      {R"({"n": 3})", "needs \"policy\""},
      {R"({"policy": "LastN", "n": 3})", "unknown preservation policy 'LastN'"},
      {R"({"policy": "LatestN"})", "'n' is missing"},
      {R"({"policy": "LatestN", "n": -1})", "'n' must be an integer >= 0"},
      {R"({"policy": "LatestN", "n": 2.5})", "'n' must be an integer >= 0"},
      {R"({"policy": "LatestN", "n": 3, "max": 1})",
       "'max' is not an argument of LatestN"},
      {R"({"policy": "EveryNSteps", "interval_steps": 0})",
       "'interval_steps' must be an integer >= 1"},
      {R"({"policy": "EveryNSeconds", "interval_secs": "1h"})",
       "'interval_secs' must be a number of seconds >= 0"},
      {R"({"policy": "LatestDuration", "duration_secs": 1e300})",
       "'duration_secs' is more than 1e12 seconds"},
      {R"({"policy": "BestN", "metric": 1})",
       "'metric' must be a metric's name"},
      {R"({"policy": "BestN", "metric": "loss", "reverse": 1})",
       "'reverse' must be true or false"},
      {R"({"policy": "CustomSteps", "steps": [1, "2"]})",
       "'steps' must be an integer >= 0"},
      {R"({"policy": "AnyPreservationPolicy", "policies": {}})",
       "'policies' must be an array of policies"},
  };
  for (const auto& [text, message] : cases) {
    INFO(text);
    CHECK_THAT(message_of<InvalidArgumentError>([&] {
                 preservation_policy_from_json(nlohmann::json::parse(text));
               }),
               Catch::Contains(message));
  }
  nlohmann::json deep = {{"policy", "LatestN"}, {"n", 1}};
  for (int i = 0; i < 40; ++i) {
    deep = {{"policy", "AnyPreservationPolicy"}, {"policies", {deep}}};
  }
  CHECK_THAT(message_of<InvalidArgumentError>(
                 [&] { preservation_policy_from_json(deep); }),
             Catch::Contains("nests more than 16 policies deep"));
}

TEST_CASE("a Checkpointer records its preservation policy at the root",
          "[checkpointer]") {
  TempDir dir;
  const fs::path root = dir / "run";
  CHECK_FALSE(recorded_preservation_policy(dir.path()));
  CheckpointerOptions options;
  options.preservation_policy = LatestN(3);
  { Checkpointer checkpointer(root, options); }
  CHECK(recorded_preservation_policy(root) == LatestN(3).to_json());
  // The next run's policy replaces it; one JSON cannot describe is null.
  options.preservation_policy =
      BestN([](const nlohmann::json& m) { return m.at("x").get<double>(); });
  { Checkpointer checkpointer(root, options); }
  const auto recorded = recorded_preservation_policy(root);
  REQUIRE(recorded);
  CHECK(recorded->is_null());
  // A damaged record is an error naming it, and a Checkpointer replaces it.
  const fs::path record = root / ".ckpt_preservation_policy.json";
  std::ofstream(record, std::ios::trunc) << "[not json";
  CHECK_THAT(
      message_of<DataLossError>([&] { recorded_preservation_policy(root); }),
      Catch::Contains(".ckpt_preservation_policy.json"));
  options.preservation_policy = PreserveAll();
  { Checkpointer checkpointer(root, options); }
  CHECK(recorded_preservation_policy(root) == PreserveAll().to_json());
}
