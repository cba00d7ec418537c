// Preservation policies as JSON (ckpt/checkpointer.h): what a Checkpointer
// records at its root and `ckpt ls --keep` reads.
#include <ckpt/checkpointer.h>
#include <ckpt/errors.h>
#include <ckpt/sdk/text.h>

#include <chrono>
#include <cmath>
#include <limits>

namespace ckpt {

namespace {

using nlohmann::json;

json optional_size(const std::optional<size_t>& n) {
  return n ? json(*n) : json(nullptr);
}

// Reads the members of one policy object, naming it in every error.
class Members {
 public:
  Members(const json& object, std::string policy)
      : object_(object), policy_(std::move(policy)) {}

  [[noreturn]] void fail(const std::string& member,
                         const std::string& why) const {
    throw InvalidArgumentError("preservation policy " + policy_ + ": '" +
                               sdk::escaped(member) + "' " + why);
  }
  const json* find(const std::string& member) const {
    const auto it = object_.find(member);
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }
  const json& need(const std::string& member) const {
    const json* value = find(member);
    if (!value) fail(member, "is missing");
    return *value;
  }
  int64_t integer(const json& value, const std::string& member,
                  int64_t least) const {
    if (!value.is_number_integer() ||
        (value.is_number_unsigned() &&
         value.get<uint64_t>() >
             static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) ||
        value.get<int64_t>() < least) {
      fail(member, "must be an integer >= " + std::to_string(least));
    }
    return value.get<int64_t>();
  }
  int64_t integer(const std::string& member, int64_t least) const {
    return integer(need(member), member, least);
  }
  std::optional<size_t> optional_count(const std::string& member) const {
    const json* value = find(member);
    if (!value) return std::nullopt;
    return static_cast<size_t>(integer(*value, member, 0));
  }
  double seconds(const std::string& member) const {
    const json& value = need(member);
    if (!value.is_number() || !std::isfinite(value.get<double>()) ||
        value.get<double>() < 0) {
      fail(member, "must be a number of seconds >= 0");
    }
    return value.get<double>();
  }
  bool flag(const std::string& member, bool otherwise) const {
    const json* value = find(member);
    if (!value) return otherwise;
    if (!value->is_boolean()) fail(member, "must be true or false");
    return value->get<bool>();
  }
  // Every member is one this policy takes: a misspelt one is an error,
  // not a default silently used.
  void only(std::initializer_list<const char*> known) const {
    for (const auto& [member, value] : object_.items()) {
      bool found = member == "policy";
      for (const char* name : known) found = found || member == name;
      if (!found) fail(member, "is not an argument of " + policy_);
    }
  }

 private:
  const json& object_;
  std::string policy_;
};

constexpr int kMaxPolicyDepth = 16;

PreservationPolicyRef from_json(const json& policy, int depth) {
  if (!policy.is_object()) {
    throw InvalidArgumentError(
        "a preservation policy must be a JSON object, not " +
        std::string(policy.type_name()));
  }
  const auto name_it = policy.find("policy");
  if (name_it == policy.end() || !name_it->is_string()) {
    throw InvalidArgumentError(
        "a preservation policy needs \"policy\": the name of its class");
  }
  const std::string name = name_it->get<std::string>();
  const Members m(policy, name);
  if (name == "PreserveAll") {
    m.only({});
    return PreserveAll();
  }
  if (name == "LatestN") {
    m.only({"n"});
    return LatestN(static_cast<size_t>(m.integer("n", 0)));
  }
  if (name == "EveryNSeconds") {
    m.only({"interval_secs"});
    return EveryNSeconds(m.seconds("interval_secs"));
  }
  if (name == "EveryNSteps") {
    m.only({"interval_steps", "exact_interval", "max_to_keep"});
    return EveryNSteps(m.integer("interval_steps", 1),
                       m.flag("exact_interval", true),
                       m.optional_count("max_to_keep"));
  }
  if (name == "EveryNStepsClosest") {
    m.only({"interval_steps", "max_to_keep"});
    return EveryNStepsClosest(m.integer("interval_steps", 1),
                              m.optional_count("max_to_keep"));
  }
  if (name == "LatestDuration") {
    m.only({"duration_secs"});
    const double secs = m.seconds("duration_secs");
    if (secs > 1e12) m.fail("duration_secs", "is more than 1e12 seconds");
    return LatestDuration(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::duration<double>(secs)));
  }
  if (name == "CustomSteps") {
    m.only({"steps"});
    const json& steps = m.need("steps");
    if (!steps.is_array()) m.fail("steps", "must be an array of steps");
    std::vector<int64_t> out;
    for (const json& step : steps) out.push_back(m.integer(step, "steps", 0));
    return CustomSteps(std::move(out));
  }
  if (name == "BestN") {
    m.only({"metric", "reverse", "n", "keep_checkpoints_without_metrics"});
    const json& metric = m.need("metric");
    if (!metric.is_string()) m.fail("metric", "must be a metric's name");
    return BestN(metric.get<std::string>(), m.flag("reverse", false),
                 m.optional_count("n"),
                 m.flag("keep_checkpoints_without_metrics", true));
  }
  if (name == "AnyPreservationPolicy") {
    m.only({"policies"});
    const json& policies = m.need("policies");
    if (!policies.is_array())
      m.fail("policies", "must be an array of policies");
    if (depth >= kMaxPolicyDepth) {
      m.fail("policies", "nests more than " + std::to_string(kMaxPolicyDepth) +
                             " policies deep");
    }
    std::vector<PreservationPolicyRef> out;
    for (const json& one : policies) out.push_back(from_json(one, depth + 1));
    return AnyPreservationPolicy(std::move(out));
  }
  throw InvalidArgumentError("unknown preservation policy '" +
                             sdk::escaped(name) + "'");
}

}  // namespace

json PreserveAll::to_json() const { return {{"policy", "PreserveAll"}}; }

json LatestN::to_json() const { return {{"policy", "LatestN"}, {"n", n_}}; }

json EveryNSeconds::to_json() const {
  return {{"policy", "EveryNSeconds"}, {"interval_secs", interval_secs_}};
}

json EveryNSteps::to_json() const {
  return {{"policy", "EveryNSteps"},
          {"interval_steps", interval_steps_},
          {"exact_interval", exact_interval_},
          {"max_to_keep", optional_size(max_to_keep_)}};
}

json EveryNStepsClosest::to_json() const {
  return {{"policy", "EveryNStepsClosest"},
          {"interval_steps", interval_steps_},
          {"max_to_keep", optional_size(max_to_keep_)}};
}

json LatestDuration::to_json() const {
  return {{"policy", "LatestDuration"},
          {"duration_secs", std::chrono::duration<double>(duration_).count()}};
}

json CustomSteps::to_json() const {
  return {{"policy", "CustomSteps"}, {"steps", steps_}};
}

json BestN::to_json() const {
  if (!metric_name_) return nullptr;
  return {{"policy", "BestN"},
          {"metric", *metric_name_},
          {"reverse", reverse_},
          {"n", optional_size(n_)},
          {"keep_checkpoints_without_metrics", keep_without_metrics_}};
}

json AnyPreservationPolicy::to_json() const {
  json policies = json::array();
  for (const PreservationPolicyRef& policy : policies_) {
    json one = policy->to_json();
    if (one.is_null()) return nullptr;  // described whole or not at all
    policies.push_back(std::move(one));
  }
  return {{"policy", "AnyPreservationPolicy"}, {"policies", policies}};
}

PreservationPolicyRef preservation_policy_from_json(const json& policy) {
  return from_json(policy, 0);
}

}  // namespace ckpt
