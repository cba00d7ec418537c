// The `ckpt` command-line tool, run as a user would, on our checkpoints and
// on Python Orbax's.
#include <ckpt/checkpoint.h>
#include <ckpt/checkpointer.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "proto_samples.h"
#include "test_util.h"

using namespace ckpt;
using namespace ckpt::test;

namespace {

CommandResult ckpt_tool(const std::string& args) {
  return run_command(std::string(CKPT_TOOL) + " " + args + " 2>&1");
}

fs::path orbax_fixture(const std::string& category, const std::string& name) {
  return fs::path(CKPT_SOURCE_ROOT) / ".." / "shared" / "fixtures" / "orbax" /
         "v1_checkpoints" / "composite_checkpoint" / category / name;
}

// A checkpoint of ours with a JSON config and metrics.
fs::path make_checkpoint(const TempDir& dir) {
  SaveOptions options;
  options.custom_metadata = {{"run", "tool-test"}};
  options.metrics = nlohmann::json{{"loss", 0.5}};
  save_checkpointables(
      dir / "c", {{"config", Value::json({{"lr", 0.1}, {"layers", {1, 2}}})}},
      options);
  return dir / "c";
}

}  // namespace

TEST_CASE(
    "ckpt info describes a checkpoint and the handler that would load "
    "each part now",
    "[tool]") {
  TempDir dir;
  fs::path c = make_checkpoint(dir);
  CommandResult text = ckpt_tool("info " + c.string());
  INFO(text.output);
  CHECK(text.status == 0);
  CHECK(text.output.find("v1 (orbax.checkpoint marker)") != std::string::npos);
  CHECK(text.output.find("config") != std::string::npos);
  CHECK(text.output.find("tool-test") != std::string::npos);

  CommandResult json = ckpt_tool("info --json " + c.string());
  REQUIRE(json.status == 0);
  auto out = nlohmann::json::parse(json.output);
  CHECK(out["layout"] == "v1");
  CHECK(out["custom_metadata"]["run"] == "tool-test");
  CHECK(out["metrics"]["loss"] == 0.5);
  REQUIRE(out["checkpointables"].size() == 1);
  CHECK(out["checkpointables"][0]["name"] == "config");
  CHECK(out["checkpointables"][0]["saved_by"] == "ckpt.json.JsonHandler");
  CHECK(out["checkpointables"][0]["loaded_by"] == "ckpt.json.JsonHandler");
  CHECK(out["bytes"].get<uint64_t>() > 0);
}

TEST_CASE("ckpt info reads Orbax checkpoints", "[tool][orbax]") {
  fs::path c = orbax_fixture("checkpoint_metadata_present",
                             "pytree_checkpointable_has_metadata");
  CommandResult json = ckpt_tool("info --json " + c.string());
  INFO(json.output);
  REQUIRE(json.status == 0);
  auto out = nlohmann::json::parse(json.output);
  bool metadata_by_json = false, descriptor_absent = false;
  for (const auto& cp : out["checkpointables"]) {
    metadata_by_json |=
        cp["name"] == "metadata" && cp["loaded_by"] == "ckpt.json.JsonHandler";
    descriptor_absent |= cp["name"] == "descriptor" && cp["present"] == false;
  }
  CHECK(metadata_by_json);
  CHECK(descriptor_absent);
}

TEST_CASE("ckpt cat prints JSON checkpointables and key paths", "[tool]") {
  TempDir dir;
  fs::path c = make_checkpoint(dir);
  CommandResult whole = ckpt_tool("cat " + c.string() + " config");
  CHECK(whole.status == 0);
  CHECK(nlohmann::json::parse(whole.output)["lr"] == 0.1);
  CommandResult orbax =
      ckpt_tool("cat " +
                orbax_fixture("checkpoint_metadata_present",
                              "pytree_checkpointable_has_metadata")
                    .string() +
                " metadata --json");
  CHECK(orbax.status == 0);
  CHECK(nlohmann::json::parse(orbax.output)["metadata"] == "json_data");
  CommandResult missing = ckpt_tool("cat " + c.string() + " nothing");
  CHECK(missing.status == 1);
  CHECK(missing.output.find("no checkpointable 'nothing'") !=
        std::string::npos);
}

TEST_CASE(
    "ckpt cat, tree and verify work on the arrays of Orbax checkpoints, v1 "
    "and v0",
    "[tool][orbax]") {
  const fs::path v0 = fs::path(CKPT_SOURCE_ROOT) / ".." / "shared" /
                      "fixtures" / "orbax" / "v0_checkpoints" /
                      "direct_checkpoint" / "checkpoint_metadata_missing" /
                      "pytree_checkpointable_has_metadata";
  for (const fs::path& c : {orbax_fixture("checkpoint_metadata_present",
                                          "pytree_checkpointable_has_metadata"),
                            v0}) {
    INFO(c);
    CommandResult cat = ckpt_tool("cat " + c.string() + " state");
    INFO(cat.output);
    CHECK(cat.status == 0);
    CHECK(cat.output.find("a: array([0, 1, 2, 3, 4, 5, 6, 7], dtype=int32") !=
          std::string::npos);
    CHECK(cat.output.find("b/c: array([1, 2, 3], dtype=int32") !=
          std::string::npos);
    CommandResult tree = ckpt_tool("tree " + c.string() + " state");
    INFO(tree.output);
    CHECK(tree.status == 0);
    CHECK(tree.output.find("int32[8]") != std::string::npos);
    CHECK(tree.output.find("2 leaves, 2 arrays, 11 elements") !=
          std::string::npos);
    CommandResult verify = ckpt_tool("verify --json " + c.string());
    INFO(verify.output);
    CHECK(verify.status == 0);
    const auto report = nlohmann::json::parse(verify.output);
    CHECK(report["problems"] == 0);
    for (const auto& cp : report["checkpointables"]) {
      CHECK(cp["status"] != "damaged");
    }
  }
}

TEST_CASE(
    "ckpt convert writes an Orbax checkpoint as a ckpt checkpoint h5py "
    "reads, copying what only the host app loads",
    "[tool][orbax]") {
  TempDir dir;
  const fs::path source = orbax_fixture("checkpoint_metadata_present",
                                        "pytree_checkpointable_has_metadata");
  // A copy with a checkpointable no plugin claims (its typestr recorded).
  fs::copy(source, dir / "orbax", fs::copy_options::recursive);
  fs::permissions(dir / "orbax", fs::perms::owner_all, fs::perm_options::add);
  fs::create_directories(dir / "orbax" / "host" / "sub");
  write_text(dir / "orbax" / "host" / "sub" / "blob.bin", "host bytes");
  {
    fs::permissions(dir / "orbax" / "_CHECKPOINT_METADATA",
                    fs::perms::owner_write, fs::perm_options::add);
    auto meta = nlohmann::json::parse(
        read_text(dir / "orbax" / "_CHECKPOINT_METADATA"));
    meta["item_handlers"]["host"] = "my_app.HostOnlyHandler";
    fs::remove(dir / "orbax" / "_CHECKPOINT_METADATA");
    write_text(dir / "orbax" / "_CHECKPOINT_METADATA", meta.dump());
  }
  CommandResult r = ckpt_tool("convert " + (dir / "orbax").string() + " " +
                              (dir / "out").string());
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("state: converted") != std::string::npos);
  CHECK(r.output.find("host: copied") != std::string::npos);
  // A ckpt checkpoint now: checksums, and h5py reads its arrays.
  CHECK(read_checkpoint_info(dir / "out").checksums_recorded);
  CHECK(read_text(dir / "out" / "host" / "sub" / "blob.bin") == "host bytes");
  CHECK(read_checkpoint_info(dir / "out").typestr_of("host") ==
        "my_app.HostOnlyHandler");
  CommandResult h5 = run_command(
      "/usr/bin/python3 " CKPT_SOURCE_ROOT "/tests/pytree_h5py_read.py " +
      (dir / "out" / "state" / "arrays.h5").string());
  INFO(h5.output);
  REQUIRE(h5.status == 0);
  CHECK(h5.output.find(R"({"key": "a", "dtype": "int32", "shape": [8])") !=
        std::string::npos);
  CHECK(h5.output.find("010000000200000003000000") != std::string::npos);
  CommandResult verify = ckpt_tool("verify " + (dir / "out").string());
  INFO(verify.output);
  CHECK(verify.output.find("state: ok") != std::string::npos);
  // A flat v0 pytree (zarr v2 arrays, no _CHECKPOINT_METADATA) too.
  const fs::path v0 = fs::path(CKPT_SOURCE_ROOT) / ".." / "shared" /
                      "fixtures" / "orbax" / "v0_checkpoints" /
                      "direct_checkpoint" / "checkpoint_metadata_missing" /
                      "pytree_checkpointable_has_metadata";
  CommandResult flat =
      ckpt_tool("convert " + v0.string() + " " + (dir / "flat").string());
  INFO(flat.output);
  REQUIRE(flat.status == 0);
  CommandResult cat = ckpt_tool("cat " + (dir / "flat").string() + " state");
  CHECK(cat.output.find("a: array([0, 1, 2, 3, 4, 5, 6, 7], dtype=int32") !=
        std::string::npos);
  // It never writes over a checkpoint.
  CommandResult again = ckpt_tool("convert " + (dir / "orbax").string() + " " +
                                  (dir / "out").string());
  CHECK(again.status == 1);
  CHECK(read_text(dir / "out" / "host" / "sub" / "blob.bin") == "host bytes");
  // A copied part must be folders and files inside the checkpoint: a link
  // (leading elsewhere) and a hostile depth are refused, naming the path,
  // and nothing is written.
  fs::create_directories(dir / "elsewhere");
  write_text(dir / "elsewhere" / "secret", "not ours");
  fs::create_directory_symlink(dir / "elsewhere",
                               dir / "orbax" / "host" / "link");
  CommandResult link = ckpt_tool("convert " + (dir / "orbax").string() + " " +
                                 (dir / "linked").string());
  INFO(link.output);
  CHECK(link.status == 1);
  CHECK(link.output.find("link") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "linked"));
  fs::remove(dir / "orbax" / "host" / "link");
  fs::path deep = dir / "orbax" / "host";
  for (int i = 0; i < 130; ++i) deep /= "d";
  fs::create_directories(deep);
  CommandResult nested = ckpt_tool("convert " + (dir / "orbax").string() + " " +
                                   (dir / "deep").string());
  INFO(nested.output);
  CHECK(nested.status == 1);
  CHECK(nested.output.find("folders deep") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "deep"));
}

TEST_CASE(
    "ckpt ls shows which policy keeps each step and what the next prune "
    "deletes",
    "[tool][checkpointer]") {
  TempDir dir;
  const fs::path root = dir / "run";
  CheckpointerOptions options;
  options.preservation_policy = AnyPreservationPolicy(
      {LatestN(2), BestN("loss", /*reverse=*/true, /*n=*/1)});
  {
    Checkpointer checkpointer(root, options);
    const std::vector<std::pair<int64_t, double>> losses = {
        {1, 0.9}, {2, 0.1}, {3, 0.5}, {4, 0.4}, {5, 0.3}};
    for (const auto& [step, loss] : losses) {
      REQUIRE(checkpointer.save_pytree(step, Value::dict({{"step", step}}),
                                       nlohmann::json{{"loss", loss}}, true));
    }
  }
  // Kept: 2 (the best loss), 4 and 5 (the latest two).
  CommandResult text = ckpt_tool("ls " + root.string());
  INFO(text.output);
  REQUIRE(text.status == 0);
  CHECK(text.output.find("AnyPreservationPolicy(LatestN(n=2), "
                         "BestN(metric=loss, n=1, reverse=true))") !=
        std::string::npos);
  CHECK(text.output.find("LatestN(n=2), newest") != std::string::npos);
  CHECK(text.output.find("recorded by the root's Checkpointer") !=
        std::string::npos);
  CHECK(text.output.find("next prune deletes: none of these steps") !=
        std::string::npos);

  CommandResult json = ckpt_tool("ls --json " + root.string());
  REQUIRE(json.status == 0);
  auto out = nlohmann::json::parse(json.output);
  CHECK(out["preservation_policy"]["source"] == "recorded");
  CHECK(out["preservation_policy"]["policy"] ==
        options.preservation_policy->to_json());
  REQUIRE(out["steps"].size() == 3);
  CHECK(out["steps"][0]["step"] == 2);
  CHECK(out["steps"][0]["kept_by"].size() == 1);
  CHECK(out["steps"][1]["kept_by"] == nlohmann::json{"LatestN(n=2)"});
  CHECK(out["steps"][2]["kept_by"] == nlohmann::json{"LatestN(n=2)", "newest"});
  CHECK(out["next_prune_deletes"] == nlohmann::json::array());

  // What another policy would keep, before a run switches to it.
  json = ckpt_tool("ls --json " + root.string() +
                   " --keep '{\"policy\": \"LatestN\", \"n\": 1}'");
  REQUIRE(json.status == 0);
  out = nlohmann::json::parse(json.output);
  CHECK(out["preservation_policy"]["source"] == "--keep");
  CHECK(out["next_prune_deletes"] == nlohmann::json{2, 4});
  CHECK(out["steps"][0]["kept_by"] == nlohmann::json::array());
  text = ckpt_tool("ls " + root.string() +
                   " --keep '{\"policy\": \"LatestN\", \"n\": 1}'");
  CHECK(text.output.find("next prune deletes: 2, 4") != std::string::npos);

  // A bad policy is a one-line error naming what is wrong.
  CommandResult bad =
      ckpt_tool("ls " + root.string() + " --keep '{\"policy\": \"LatestN\"}'");
  CHECK(bad.status == 1);
  CHECK(bad.output.find("'n' is missing") != std::string::npos);
  bad = ckpt_tool("ls " + root.string() + " --keep '{oops'");
  CHECK(bad.status == 1);
  CHECK(bad.output.find("--keep: not JSON") != std::string::npos);

  // A record that names no policy ckpt knows: the listing still stands.
  {
    std::ofstream(root / ".ckpt_preservation_policy.json", std::ios::trunc)
        << R"({"preservation_policy": {"policy": "KeepAll"}})";
  }
  text = ckpt_tool("ls " + root.string());
  REQUIRE(text.status == 0);
  CHECK(text.output.find("the root's policy record is unreadable") !=
        std::string::npos);
  CHECK(text.output.find("unknown preservation policy 'KeepAll'") !=
        std::string::npos);

  // A root with no record (Python Orbax's) says so; listing still works.
  fs::remove(root / ".ckpt_preservation_policy.json");
  text = ckpt_tool("ls " + root.string());
  REQUIRE(text.status == 0);
  CHECK(text.output.find("no preservation policy is recorded") !=
        std::string::npos);
  json = ckpt_tool("ls --json " + root.string());
  out = nlohmann::json::parse(json.output);
  CHECK(out["steps"][0]["kept_by"].is_null());
  CHECK(out["next_prune_deletes"].is_null());
}

TEST_CASE("ckpt verify passes a good checkpoint and names each problem",
          "[tool]") {
  TempDir dir;
  fs::path c = make_checkpoint(dir);
  CommandResult good = ckpt_tool("verify " + c.string());
  INFO(good.output);
  CHECK(good.status == 0);
  CHECK(good.output.find("0 problems") != std::string::npos);
  CHECK(good.output.find("config: ok") != std::string::npos);
  write_text(c / "config" / "data.json", "{ damaged");
  CommandResult bad = ckpt_tool("verify --json " + c.string());
  INFO(bad.output);
  CHECK(bad.status == 1);
  auto out = nlohmann::json::parse(bad.output);
  CHECK(out["problems"] == 1);
  CHECK(out["checkpointables"][0]["status"] == "damaged");
  CHECK(out["checkpointables"][0]["detail"].get<std::string>().find(
            "data.json") != std::string::npos);
}

TEST_CASE("ckpt verify fails critical Orbax alterations, naming the part",
          "[tool][orbax]") {
  CommandResult r =
      ckpt_tool("verify " + orbax_fixture("critical_general_alterations",
                                          "dummy_checkpointable_added")
                                .string());
  INFO(r.output);
  CHECK(r.status == 1);
  CHECK(r.output.find("dummy") != std::string::npos);
}

TEST_CASE("bad input gives a one-line error and exit 1; bad usage exit 2",
          "[tool]") {
  TempDir dir;
  fs::create_directories(dir / "c.orbax-checkpoint-tmp-1");
  write_text(dir / "file", "x");
  for (const std::string& path :
       {(dir / "missing").string(), (dir / "file").string(),
        (dir / "c.orbax-checkpoint-tmp-1").string(), dir.path().string()}) {
    for (std::string command : {"info", "verify", "tree"}) {
      CommandResult r = ckpt_tool(command + " " + path);
      INFO(command << " " << path << ": " << r.output);
      CHECK(r.status == 1);
      CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
      CHECK(r.output.rfind("ckpt: ", 0) == 0);
    }
  }
  CHECK(ckpt_tool("info").status == 2);
  CommandResult unknown = ckpt_tool("frobnicate");
  CHECK(unknown.status == 2);
  CHECK(unknown.output.find("unknown command 'frobnicate'") !=
        std::string::npos);
  CHECK(unknown.output.find("verify") != std::string::npos);
  CommandResult help = ckpt_tool("verify --help");
  CHECK(help.status == 0);
  CHECK(help.output.find("DIR") != std::string::npos);
}

TEST_CASE(
    "ckpt cat shows a protobuf checkpointable's text format and verify "
    "skips it, saying why",
    "[tool][proto]") {
  TempDir dir;
  save_checkpointables(dir / "c", {{"run", proto_value(sample_config())}});
  CommandResult r = ckpt_tool("cat " + (dir / "c").string() + " run");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(r.output.find("# proto.pbtxt") != std::string::npos);
  CHECK(r.output.find("step: 123456789012") != std::string::npos);
  CommandResult v = ckpt_tool("verify " + (dir / "c").string());
  INFO(v.output);
  CHECK(v.status == 0);
  CHECK(v.output.find("loads only into an abstract checkpointable") !=
        std::string::npos);
  CHECK(v.output.find("run: bytes ok (meaning needs the host app)") !=
        std::string::npos);
  CHECK(v.output.find("0 problems") != std::string::npos);
}

TEST_CASE("ckpt tree on a checkpointable that is no pytree suggests ckpt cat",
          "[tool]") {
  TempDir dir;
  fs::path c = make_checkpoint(dir);
  CommandResult r = ckpt_tool("tree " + c.string() + " config");
  INFO(r.output);
  CHECK(r.status == 1);
  CHECK(r.output.find("is not a pytree") != std::string::npos);
  CHECK(r.output.find("ckpt cat " + c.string() + " config") !=
        std::string::npos);
}

TEST_CASE(
    "ckpt cat prints each float as the shortest text that reads back to the "
    "same value of its dtype",
    "[tool]") {
  TempDir dir;
  const std::vector<float> f32 = {0.1f, 1.0f / 3, 100.0f, 1e-5f, 2.5e20f};
  const std::vector<double> f64 = {0.1, 1.0 / 3, -0.0};
  Array half = Array::zeros(DType::kFloat16, {2});
  half.data_as<uint16_t>()[0] = 0x2e66;  // float16(0.1) = 0.0999755859375
  half.data_as<uint16_t>()[1] = 0x3c00;  // 1.0
  save(dir / "c", Value::dict({{"f32", Array::from(f32)},
                               {"f64", Array::from(f64)},
                               {"f16", half}}));
  auto cat = [&](const std::string& key) {
    CommandResult r =
        ckpt_tool("cat " + (dir / "c").string() + " state/" + key);
    INFO(r.output);
    CHECK(r.status == 0);
    return r.output;
  };
  // As NumPy prints them.
  CHECK(cat("f32").find("[0.1, 0.33333334, 100., 1.e-05, 2.5e+20]") !=
        std::string::npos);
  CHECK(cat("f64").find("[0.1, 0.3333333333333333, -0.]") != std::string::npos);
  CHECK(cat("f16").find("[0.1, 1.]") != std::string::npos);
}

TEST_CASE(
    "ckpt ls lists a root's steps oldest first with their state, and ckpt "
    "info on a root points at it",
    "[tool][checkpointer]") {
  TempDir dir;
  const fs::path root = dir / "run";
  {
    Checkpointer checkpointer(root);
    for (int64_t step : {3, 12}) {
      REQUIRE(checkpointer.save_checkpointables(
          step, {{"config", Value::json({{"step", step}})}},
          nlohmann::json{{"loss", 1.0 / static_cast<double>(step)}}));
    }
  }
  fs::create_directories(root / "20" / "config");            // not committed
  fs::create_directories(root / "21.orbax-checkpoint-tmp");  // Orbax's

  CommandResult text = ckpt_tool("ls " + root.string());
  INFO(text.output);
  REQUIRE(text.status == 0);
  const size_t three = text.output.find("\n3 ");
  const size_t twelve = text.output.find("\n12 ");
  REQUIRE(three != std::string::npos);
  REQUIRE(twelve != std::string::npos);
  CHECK(three < twelve);
  CHECK(text.output.find("committed") != std::string::npos);
  CHECK(text.output.find("\"loss\":0.08333") != std::string::npos);
  CHECK(text.output.find("\n20 ") != std::string::npos);
  CHECK(text.output.find("incomplete") != std::string::npos);
  CHECK(text.output.find("21.orbax-checkpoint-tmp: owner unknown") !=
        std::string::npos);

  CommandResult json = ckpt_tool("ls --json " + root.string());
  REQUIRE(json.status == 0);
  const auto out = nlohmann::json::parse(json.output);
  REQUIRE(out["steps"].size() == 3);
  CHECK(out["steps"][0]["step"] == 3);
  CHECK(out["steps"][0]["state"] == "committed");
  CHECK(out["steps"][0]["metrics"]["loss"] == Approx(1.0 / 3));
  CHECK(out["steps"][0]["bytes"].get<uint64_t>() > 0);
  CHECK(out["steps"][2]["state"] == "incomplete");
  CHECK(out["steps"][2]["problem"].get<std::string>().find(
            "_CHECKPOINT_METADATA") != std::string::npos);
  REQUIRE(out["temporaries"].size() == 1);
  CHECK(out["temporaries"][0]["owner"] == "unknown");

  CommandResult info = ckpt_tool("info " + root.string());
  CHECK(info.status == 1);
  CHECK(info.output.find("root of 3 step checkpoint(s)") != std::string::npos);
  CHECK(info.output.find("ckpt ls " + root.string()) != std::string::npos);

  CommandResult missing = ckpt_tool("ls " + (dir / "absent").string());
  CHECK(missing.status == 1);
  CHECK(missing.output.find("does not exist") != std::string::npos);
}
