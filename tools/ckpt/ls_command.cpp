// `ckpt ls ROOT [--keep POLICY]`: the step checkpoints of a training run's
// root folder, oldest first, the temporary folders beside them, and which
// preservation policy keeps each step (the one the root's Checkpointer
// recorded, or --keep's) and what its next prune deletes.
#include <ckpt/checkpointer.h>
#include <ckpt/errors.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "commands.h"
#include "format.h"

namespace ckpt::tool {

namespace {

int64_t nsecs_of(std::chrono::system_clock::time_point time) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             time.time_since_epoch())
      .count();
}

const char* owner_text(TemporaryFolder::Owner owner) {
  switch (owner) {
    case TemporaryFolder::Owner::kGone:
      return "leftover: its save died (removed when a Checkpointer opens the "
             "root)";
    case TemporaryFolder::Owner::kAlive:
      return "a save in progress";
    case TemporaryFolder::Owner::kOtherHost:
      return "leftover or in progress on another host";
    case TemporaryFolder::Owner::kOtherBoot:
      return "leftover from before this host's last boot";
    case TemporaryFolder::Owner::kUnknown:
      break;
  }
  return "owner unknown";
}

const char* owner_key(TemporaryFolder::Owner owner) {
  switch (owner) {
    case TemporaryFolder::Owner::kGone:
      return "gone";
    case TemporaryFolder::Owner::kAlive:
      return "alive";
    case TemporaryFolder::Owner::kOtherHost:
      return "other-host";
    case TemporaryFolder::Owner::kOtherBoot:
      return "other-boot";
    case TemporaryFolder::Owner::kUnknown:
      break;
  }
  return "unknown";
}

// "LatestN(n=3)": a policy's class and its arguments, but those left at
// their defaults.
std::string policy_label(const nlohmann::json& policy) {
  static const nlohmann::json kDefaults = {
      {"BestN",
       {{"reverse", false}, {"keep_checkpoints_without_metrics", true}}},
      {"EveryNSteps", {{"exact_interval", true}}}};
  const std::string name = policy.at("policy").get<std::string>();
  const nlohmann::json defaults =
      kDefaults.value(name, nlohmann::json::object());
  std::string args;
  for (const auto& [member, value] : policy.items()) {
    if (member == "policy" || value.is_null() ||
        defaults.value(member, nlohmann::json()) == value) {
      continue;
    }
    if (!args.empty()) args += ", ";
    if (member == "policies") {
      for (const nlohmann::json& part : value) {
        args += (&part == &value.front() ? "" : ", ") + policy_label(part);
      }
    } else {
      args += member + "=" +
              (value.is_string() ? value.get<std::string>() : value.dump());
    }
  }
  return name + "(" + args + ")";
}

// Which policy keeps each committed step, and where the policy came from.
struct Keeping {
  std::optional<nlohmann::json> policy;  // nullopt: none known
  std::string source;                    // "recorded" or "--keep"
  std::string note;                      // why no policy is known, when none is
  // Per committed step: the policies keeping it ("newest" for the newest).
  std::map<int64_t, std::vector<std::string>> kept_by;
  std::vector<int64_t> next_prune_deletes;  // the steps no policy keeps
};

// The policy to show: --keep's (a bad one is an error), or the one the
// root's Checkpointer recorded (a missing or bad one is a note).
void choose_policy(const std::string& root, const std::string& keep,
                   Keeping& out) {
  if (!keep.empty()) {
    nlohmann::json parsed = nlohmann::json::parse(keep, nullptr, false);
    if (parsed.is_discarded()) {
      throw InvalidArgumentError("--keep: not JSON: " + keep);
    }
    preservation_policy_from_json(parsed);  // names what is wrong
    out.policy = std::move(parsed);
    out.source = "--keep";
    return;
  }
  try {
    out.policy = recorded_preservation_policy(root);
    // A record edited by hand may name no policy ckpt knows.
    if (out.policy && !out.policy->is_null()) {
      preservation_policy_from_json(*out.policy);
    }
  } catch (const Error& e) {
    out.policy.reset();
    out.note =
        std::string("the root's policy record is unreadable: ") + e.what();
    return;
  }
  if (!out.policy) {
    out.note = "no preservation policy is recorded at this root";
  } else if (out.policy->is_null()) {
    out.policy.reset();
    out.note =
        "the root's Checkpointer keeps steps by a policy of the program's "
        "own, which ckpt ls cannot run";
  } else {
    out.source = "recorded";
  }
}

Keeping keeping_of(const std::string& root, const std::string& keep,
                   const RootListing& listing) {
  Keeping out;
  choose_policy(root, keep, out);
  if (!out.policy) return out;
  std::vector<CheckpointStep> steps;
  for (const StepFolder& s : listing.steps) {
    if (s.committed) steps.push_back(s.checkpoint);
  }
  // Each policy of an AnyPreservationPolicy is asked on its own.
  std::vector<nlohmann::json> parts = {*out.policy};
  if (out.policy->at("policy") == "AnyPreservationPolicy") {
    parts = out.policy->at("policies").get<std::vector<nlohmann::json>>();
  }
  for (const CheckpointStep& step : steps) out.kept_by[step.step];
  for (const nlohmann::json& part : parts) {
    const std::vector<bool> keep_part =
        preservation_policy_from_json(part)->should_preserve(steps, {});
    for (size_t i = 0; i < steps.size() && i < keep_part.size(); ++i) {
      if (keep_part[i])
        out.kept_by[steps[i].step].push_back(policy_label(part));
    }
  }
  // The Checkpointer never deletes the newest committed step.
  if (!steps.empty()) out.kept_by[steps.back().step].push_back("newest");
  for (const auto& [step, by] : out.kept_by) {
    if (by.empty()) out.next_prune_deletes.push_back(step);
  }
  return out;
}

// The policies keeping committed step `s`; null when none is known.
const std::vector<std::string>* kept_by(const Keeping& keeping,
                                        const StepFolder& s) {
  if (!s.committed || !keeping.policy) return nullptr;
  return &keeping.kept_by.at(s.checkpoint.step);
}

std::string joined(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& part : parts) out += (out.empty() ? "" : ", ") + part;
  return out;
}

nlohmann::ordered_json ls_json(const std::string& root,
                               const RootListing& listing,
                               const Keeping& keeping) {
  nlohmann::ordered_json out;
  out["root"] = root;
  out["step_name_format"] = {
      {"prefix", listing.format.prefix},
      {"fixed_length",
       listing.format.fixed_length
           ? nlohmann::ordered_json(*listing.format.fixed_length)
           : nlohmann::ordered_json(nullptr)}};
  out["preservation_policy"] =
      keeping.policy
          ? nlohmann::ordered_json{{"source", keeping.source},
                                   {"policy", nlohmann::ordered_json::parse(
                                                  keeping.policy->dump())}}
          : nlohmann::ordered_json{{"source", nullptr},
                                   {"policy", nullptr},
                                   {"note", keeping.note}};
  out["steps"] = nlohmann::ordered_json::array();
  for (const StepFolder& s : listing.steps) {
    nlohmann::ordered_json step;
    step["step"] = s.checkpoint.step;
    step["path"] = s.checkpoint.path.string();
    step["state"] = s.committed ? "committed" : "incomplete";
    step["commit_timestamp_nsecs"] =
        s.committed ? nlohmann::ordered_json(nsecs_of(s.checkpoint.time))
                    : nlohmann::ordered_json(nullptr);
    step["bytes"] = s.checkpoint.size_bytes.value_or(0);
    step["metrics"] =
        nlohmann::ordered_json::parse(s.checkpoint.metrics.dump());
    if (!s.committed) step["problem"] = s.problem;
    const std::vector<std::string>* by = kept_by(keeping, s);
    step["kept_by"] =
        by ? nlohmann::ordered_json(*by) : nlohmann::ordered_json(nullptr);
    out["steps"].push_back(step);
  }
  out["next_prune_deletes"] =
      keeping.policy ? nlohmann::ordered_json(keeping.next_prune_deletes)
                     : nlohmann::ordered_json(nullptr);
  out["temporaries"] = nlohmann::ordered_json::array();
  for (const TemporaryFolder& t : listing.temporaries) {
    out["temporaries"].push_back({{"path", t.path.string()},
                                  {"state", "leftover temporary"},
                                  {"owner", owner_key(t.owner)},
                                  {"owner_description", t.owner_description}});
  }
  return out;
}

void print_ls(const std::string& root, const RootListing& listing,
              const Keeping& keeping) {
  std::printf("%-12s %-11s %-24s %-10s %-24s %s\n", "STEP", "STATE",
              "COMMITTED", "SIZE", "KEPT BY", "METRICS");
  for (const StepFolder& s : listing.steps) {
    const std::vector<std::string>* by = kept_by(keeping, s);
    const std::string kept = !s.committed  ? "-"
                             : !by         ? "?"
                             : by->empty() ? "- (next prune)"
                                           : joined(*by);
    const std::string metrics =
        s.checkpoint.metrics.is_null() ? "-" : s.checkpoint.metrics.dump();
    std::printf(
        "%-12lld %-11s %-24s %-10s %-24s %s\n",
        static_cast<long long>(s.checkpoint.step),
        s.committed ? "committed" : "incomplete",
        s.committed ? time_text(nsecs_of(s.checkpoint.time)).c_str() : "-",
        human_bytes(s.checkpoint.size_bytes.value_or(0)).c_str(), kept.c_str(),
        s.committed ? metrics.c_str() : s.problem.c_str());
  }
  for (const TemporaryFolder& t : listing.temporaries) {
    std::printf("%-12s %-11s %s: %s (%s)\n", "-", "temporary",
                t.path.filename().c_str(), owner_text(t.owner),
                t.owner_description.c_str());
  }
  if (listing.steps.empty() && listing.temporaries.empty()) {
    std::printf("(no step checkpoints in %s)\n", root.c_str());
  }
  if (!keeping.policy) {
    std::printf(
        "\nKEPT BY is unknown: %s (--keep POLICY_JSON shows what a "
        "policy keeps).\n",
        keeping.note.c_str());
    return;
  }
  std::printf("\npreservation policy (%s): %s\n",
              keeping.source == "recorded"
                  ? "recorded by the root's Checkpointer"
                  : "from --keep",
              policy_label(*keeping.policy).c_str());
  std::string steps;
  for (int64_t step : keeping.next_prune_deletes) {
    steps += (steps.empty() ? "" : ", ") + std::to_string(step);
  }
  std::printf("next prune deletes: %s (a newer step may make it delete more)\n",
              steps.empty() ? "none of these steps" : steps.c_str());
}

}  // namespace

int run_ls(const Common& common, const std::string& root,
           const std::string& keep) {
  const RootListing listing =
      list_checkpoint_root(root, std::nullopt, /*with_sizes=*/true);
  const Keeping keeping = keeping_of(root, keep, listing);
  if (common.json) {
    std::cout << ls_json(root, listing, keeping).dump(2) << "\n";
  } else {
    print_ls(root, listing, keeping);
  }
  return 0;
}

}  // namespace ckpt::tool
