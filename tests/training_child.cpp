// A training loop for checkpointer_kill_test: resumes from the latest step
// of ROOT (checking that it loads completely), then trains forever, one
// step every ~2 ms, printing "step N" lines.
//
//   training_child ROOT kill     saves asynchronously whenever no save is in
//                                flight, keeps the latest 2 and the best 1
//                                by loss; the test SIGKILLs it
//   training_child ROOT preempt  never saves by policy; on SIGTERM saves the
//                                step it is at, prints "preempted N" and
//                                exits 0
//
// Exit 3: the latest step did not load or held another step's values.
#include <ckpt/ckpt.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

namespace {

constexpr int64_t kElements = 64 * 1024;  // 256 KiB per array

ckpt::Value state_of(int64_t step, std::vector<float>& a,
                     std::vector<float>& b) {
  std::fill(a.begin(), a.end(), static_cast<float>(step));
  std::fill(b.begin(), b.end(), static_cast<float>(-step));
  return ckpt::Value::dict({
      {"a", ckpt::Array::borrow(ckpt::DType::kFloat32, {kElements}, a.data())},
      {"b", ckpt::Array::borrow(ckpt::DType::kFloat32, {kElements}, b.data())},
      {"step", step},
  });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || (std::strcmp(argv[2], "kill") != 0 &&
                    std::strcmp(argv[2], "preempt") != 0)) {
    std::fprintf(stderr, "usage: training_child ROOT kill|preempt\n");
    return 2;
  }
  const bool preempt = std::strcmp(argv[2], "preempt") == 0;
  ckpt::CheckpointerOptions options;
  if (preempt) {
    options.save_decision_policy = ckpt::SpecificStepsPolicy({});
    options.handle_preemption_signals = true;
  } else {
    options.save_decision_policy = ckpt::ContinuousCheckpointingPolicy();
    options.preservation_policy = ckpt::AnyPreservationPolicy(
        {ckpt::LatestN(2), ckpt::BestN("loss", /*reverse=*/true, 1)});
  }
  try {
    ckpt::Checkpointer checkpointer(argv[1], options);
    std::vector<float> a(kElements), b(kElements);
    int64_t step = 0;
    if (auto latest = checkpointer.latest()) {
      ckpt::Value tree = checkpointer.load_pytree(latest->step);
      const ckpt::Array& x = tree.at("a").as_array();
      const ckpt::Array& y = tree.at("b").as_array();
      const float* xs = static_cast<const float*>(x.data());
      const float* ys = static_cast<const float*>(y.data());
      if (tree.at("step").as_int() != latest->step ||
          x.num_elements() != kElements || y.num_elements() != kElements) {
        std::fprintf(stderr, "step %lld does not hold itself\n",
                     static_cast<long long>(latest->step));
        return 3;
      }
      for (int64_t i = 0; i < kElements; ++i) {
        if (xs[i] != static_cast<float>(latest->step) ||
            ys[i] != static_cast<float>(-latest->step)) {
          std::fprintf(stderr, "step %lld holds wrong values\n",
                       static_cast<long long>(latest->step));
          return 3;
        }
      }
      step = latest->step;
      std::printf("resumed %lld\n", static_cast<long long>(step));
    }
    for (++step;; ++step) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));  // "train"
      const double loss = static_cast<double>((step * 7919) % 101);
      checkpointer.save_pytree_async(step, state_of(step, a, b),
                                     nlohmann::json{{"loss", loss}});
      std::printf("step %lld\n", static_cast<long long>(step));
      std::fflush(stdout);
      if (checkpointer.may_exit()) {
        std::printf("preempted %lld\n", static_cast<long long>(step));
        return 0;
      }
    }
  } catch (const ckpt::Error& e) {
    std::fprintf(stderr, "training_child: %s\n", e.what());
    return 3;
  }
}
