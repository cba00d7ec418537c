// Hostile input: nesting deep enough to overflow a stack, files that are
// not regular files, plugin folders others could swap. Each must give a
// clear ckpt error naming the file or part, never a crash or a hang.
#include <ckpt/abi.h>
#include <ckpt/checkpoint.h>
#include <ckpt/errors.h>
#include <ckpt/handler.h>
#include <ckpt/plugins.h>
#include <ckpt/proto.h>
#include <ckpt/value.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "proto_samples.h"
#include "test_util.h"
#include "value/value_bridge.h"

using namespace ckpt;
using namespace ckpt::test;

namespace {

constexpr size_t kDeep = 100000;

// A list nested `depth` levels around the int 7, built without recursion.
Value deep_list(size_t depth) {
  Value root = Value::list();
  Value* inner = &root;
  for (size_t i = 1; i < depth; ++i) {
    inner->push_back(Value::list());
    inner = &inner->as_list().back();
  }
  inner->push_back(Value(7));
  return root;
}

// The same as a chain of dicts with key "k".
Value deep_dict(size_t depth) {
  Value root = Value::dict();
  Value* inner = &root;
  for (size_t i = 1; i < depth; ++i) inner = &inner->set("k", Value::dict());
  inner->set("k", Value(7));
  return root;
}

// The innermost list of deep_list.
Value& innermost(Value& root) {
  Value* node = &root;
  while (node->as_list()[0].kind() == Value::Kind::kList) {
    node = &node->as_list()[0];
  }
  return *node;
}

std::string nested_json(size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

// Runs `f` on a thread of its own and returns its future, ready. A call
// that is still blocked after 20 seconds fails the test; a reader stuck on
// `fifo` is then released by opening it for writing.
template <class F>
auto without_hanging(F f, const fs::path& fifo) {
  auto future = std::async(std::launch::async, f);
  if (future.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
    FAIL_CHECK("still blocked after 20 s on " << fifo);
    int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
  }
  future.wait();
  return future;
}

// The message of the E that future.get() throws (see message_of).
template <class E, class Future>
std::string error_of(Future& future) {
  return message_of<E>([&] { future.get(); });
}

HandlerPtr json_handler() { return make_handler("ckpt.json.JsonHandler"); }

// A folder `dir`/name saved by the json handler, holding data.json.
fs::path saved_json_item(const TempDir& dir, const std::string& name) {
  save_with(*json_handler(), dir / name, Value::json({{"lr", 0.1}}));
  REQUIRE(fs::is_regular_file(dir / name / "data.json"));
  return dir / name;
}

// A folder `dir`/name saved by the proto handler, holding proto.pbtxt.
fs::path saved_proto_item(const TempDir& dir, const std::string& name) {
  save_with(*proto_handler(), dir / name, proto_value(sample_config()));
  REQUIRE(fs::is_regular_file(dir / name / "proto.pbtxt"));
  return dir / name;
}

// Loads a proto handler item as a RunConfig.
Value load_run_config(const fs::path& item) {
  Value type = proto_type<RunConfig>();
  return load_with(*proto_handler(), item, &type);
}

void replace_with_fifo(const fs::path& file) {
  fs::remove(file);
  REQUIRE(::mkfifo(file.c_str(), 0600) == 0);
}

void replace_with_symlink(const fs::path& file, const fs::path& target) {
  fs::copy_file(file, target);
  fs::remove(file);
  fs::create_symlink(target, file);
}

CommandResult ckpt_tool(const std::string& args) {
  return run_command("timeout 120 " + std::string(CKPT_TOOL) + " " + args +
                     " 2>&1");
}

// ----------------------------------------------- a plugin built for tests

// A plugin of the C ABI alone that hands back hostile values: its handler
// type test.HostileValueHandler, configured {"shape": S, "depth": N},
// returns from load and metadata a list nested N deep (S "list"), a list
// that contains itself (S "cycle"), or JSON text nested N deep (S "json").
constexpr const char* kHostilePluginSource = R"(
#include <ckpt/abi.h>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {
const ckpt_host_api* host;

struct Config { std::string shape; size_t depth = 0; };

struct Built {
  std::vector<ckpt_value> nodes;
  std::string text;
};

ckpt_value node_of(ckpt_value_kind kind) {
  ckpt_value v;
  std::memset(&v, 0, sizeof v);
  v.struct_size = sizeof(ckpt_value);
  v.kind = kind;
  return v;
}

ckpt_owned_value build(const Config& c) {
  Built* b = new Built();
  if (c.shape == "cycle") {
    b->nodes.push_back(node_of(CKPT_VALUE_LIST));
    b->nodes[0].count = 1;
    b->nodes[0].children = &b->nodes[0];
  } else if (c.shape == "json") {
    b->text = std::string(c.depth, '[') + std::string(c.depth, ']');
    b->nodes.push_back(node_of(CKPT_VALUE_JSON));
    b->nodes[0].string_value = b->text.data();
    b->nodes[0].string_len = b->text.size();
  } else {
    b->nodes.resize(c.depth + 1);
    for (size_t i = 0; i < c.depth; ++i) {
      b->nodes[i] = node_of(CKPT_VALUE_LIST);
      b->nodes[i].count = 1;
      b->nodes[i].children = &b->nodes[i + 1];
    }
    b->nodes[c.depth] = node_of(CKPT_VALUE_INT);
    b->nodes[c.depth].int_value = 7;
  }
  ckpt_owned_value out;
  std::memset(&out, 0, sizeof out);
  out.struct_size = sizeof out;
  out.value = &b->nodes[0];
  out.deleter = [](void* ctx) { delete static_cast<Built*>(ctx); };
  out.deleter_ctx = b;
  return out;
}

ckpt_error* create_instance(void*, const char* config, void** out) {
  Config* c = new Config();
  std::string text = config;
  for (const char* shape : {"list", "cycle", "json"}) {
    if (text.find(std::string("\"") + shape + "\"") != std::string::npos) {
      c->shape = shape;
    }
  }
  size_t at = text.find("\"depth\"");
  if (at != std::string::npos) {
    c->depth = std::strtoull(text.c_str() + text.find(':', at) + 1, nullptr,
                             10);
  }
  *out = c;
  return nullptr;
}
void destroy_instance(void* instance) { delete static_cast<Config*>(instance); }
int is_handleable(void*, const ckpt_value*) { return 0; }
ckpt_answer is_abstract_handleable(void*, const ckpt_value*) {
  return CKPT_ANSWER_NO;
}
ckpt_error* save(void*, const ckpt_save_args*) {
  return host->error_new(CKPT_ERROR_UNIMPLEMENTED, "load only");
}
ckpt_error* load(void* instance, const ckpt_load_args* args) {
  host->complete_load(args->completion,
                      build(*static_cast<Config*>(instance)), nullptr);
  return nullptr;
}
ckpt_error* metadata(void* instance, const ckpt_metadata_args* args) {
  *args->result = build(*static_cast<Config*>(instance));
  return nullptr;
}

ckpt_handler_type make_type() {
  ckpt_handler_type t;
  std::memset(&t, 0, sizeof t);
  t.struct_size = sizeof t;
  t.typestr = "test.HostileValueHandler";
  t.description = "hands back hostile values";
  t.create_instance = create_instance;
  t.destroy_instance = destroy_instance;
  t.is_handleable = is_handleable;
  t.is_abstract_handleable = is_abstract_handleable;
  t.save = save;
  t.load = load;
  t.metadata = metadata;
  return t;
}
const ckpt_handler_type kType = make_type();
}  // namespace

extern "C" CKPT_EXPORT ckpt_error* ckpt_plugin_entry(
    ckpt_plugin_init_args* args) {
  args->plugin_abi_major = CKPT_ABI_MAJOR;
  args->plugin_abi_minor = CKPT_ABI_MINOR;
  args->plugin_name = "hostile";
  if (args->host_abi_major != CKPT_ABI_MAJOR) return nullptr;
  host = args->host;
  return host->register_handler_type(args->plugin, &kType);
}
)";

// Builds the plugin above (once) and loads it.
void load_hostile_plugin() {
  static TempDir dir;
  static bool loaded = [] {
    write_text(dir / "hostile.cpp", kHostilePluginSource);
    std::string command =
        std::string(CKPT_CXX) + " -std=c++17 -shared -fPIC -I" +
        CKPT_SOURCE_ROOT + "/sdk/include " + (dir / "hostile.cpp").string() +
        " -o " + (dir / "ckpt-plugin-hostile.so").string() + " 2>&1";
    CommandResult r = run_command(command);
    INFO(r.output);
    REQUIRE(r.status == 0);
    load_plugin(dir / "ckpt-plugin-hostile.so");
    return true;
  }();
  (void)loaded;
}

HandlerPtr hostile_handler(const std::string& shape, size_t depth = 0) {
  load_hostile_plugin();
  return make_handler("test.HostileValueHandler",
                      {{"shape", shape}, {"depth", depth}});
}

}  // namespace

// ------------------------------------------------------ values in memory

TEST_CASE(
    "a Value nested 100,000 deep copies, compares, moves and is destroyed "
    "without recursion",
    "[hostile]") {
  for (Value deep : {deep_list(kDeep), deep_dict(kDeep)}) {
    CHECK(nesting_depth(deep) == kDeep);
    Value copy = deep;
    CHECK(copy == deep);
    CHECK(nesting_depth(copy) == kDeep);
    Value other = Value::list();
    other = copy;
    CHECK(other == deep);
    // `copy` takes its own child: the rest of its old tree goes.
    if (copy.kind() == Value::Kind::kList) {
      copy = std::move(copy.as_list()[0]);
      innermost(other).as_list()[0] = Value(8);
      CHECK(other != deep);
    } else {
      copy = std::move(copy.as_dict()[0].second);
    }
    CHECK(nesting_depth(copy) == kDeep - 1);
    CHECK(copy != deep);
  }
}

TEST_CASE("a deep Value is refused before any handler sees it", "[hostile]") {
  CHECK_NOTHROW(internal::CValueView(deep_list(kMaxNestingDepth)));
  std::string message = message_of<InvalidArgumentError>(
      [] { internal::CValueView view(deep_list(kMaxNestingDepth + 1)); });
  CHECK(message.find("nested deeper than 512") != std::string::npos);
  CHECK_THROWS_AS(internal::CValueView(deep_dict(kDeep)), InvalidArgumentError);

  // Through the public API: the save fails, naming the problem; no
  // checkpoint appears.
  TempDir dir;
  message = message_of<InvalidArgumentError>(
      [&] { save(dir / "blocking", deep_list(1000)); });
  INFO(message);
  CHECK(message.find("nested deeper than 512") != std::string::npos);
  CHECK_THROWS_AS(save_async(dir / "async", deep_list(kDeep)).result(),
                  InvalidArgumentError);
  CHECK_FALSE(fs::exists(dir / "blocking"));
  CHECK_FALSE(fs::exists(dir / "async"));
}

TEST_CASE("Value::json refuses a document nested deeper than 512 levels",
          "[hostile]") {
  CHECK(nesting_depth(
            Value::json(nlohmann::json::parse(nested_json(512))).as_json()) ==
        512);
  for (size_t depth : {size_t{513}, kDeep}) {
    // nlohmann's parser is iterative; copying the document would not be.
    nlohmann::json document = nlohmann::json::parse(nested_json(depth));
    std::string message = message_of<InvalidArgumentError>(
        [&] { Value::json(std::move(document)); });
    CHECK(message.find("nested deeper than 512") != std::string::npos);
  }
}

// ------------------------------------------------------ values of plugins

TEST_CASE("the host refuses a deep or cyclic value from a plugin's C view",
          "[hostile]") {
  std::vector<ckpt_value> chain(kDeep + 1);
  for (size_t i = 0; i <= kDeep; ++i) {
    chain[i] = ckpt_value{};
    chain[i].struct_size = CKPT_VALUE_STRUCT_SIZE;
    chain[i].kind = i == kDeep ? CKPT_VALUE_INT : CKPT_VALUE_LIST;
    chain[i].count = i == kDeep ? 0 : 1;
    chain[i].children = i == kDeep ? nullptr : &chain[i + 1];
  }
  // The last 512 levels convert; one more does not.
  Value ok = internal::from_c_value(chain[kDeep - 512], nullptr);
  CHECK(nesting_depth(ok) == 512);
  std::string message = message_of<PluginError>(
      [&] { internal::from_c_value(chain[kDeep - 513], nullptr); });
  CHECK(message.find("nested deeper than 512") != std::string::npos);
  CHECK_THROWS_AS(internal::from_c_value(chain[0], nullptr), PluginError);

  ckpt_value cycle{};
  cycle.struct_size = CKPT_VALUE_STRUCT_SIZE;
  cycle.kind = CKPT_VALUE_DICT;
  const char* key = "self";
  cycle.count = 1;
  cycle.keys = &key;
  cycle.children = &cycle;
  CHECK_THROWS_AS(internal::from_c_value(cycle, nullptr), PluginError);

  const std::string text = nested_json(kDeep);
  ckpt_value json{};
  json.struct_size = CKPT_VALUE_STRUCT_SIZE;
  json.kind = CKPT_VALUE_JSON;
  json.string_value = text.data();
  json.string_len = text.size();
  message =
      message_of<PluginError>([&] { internal::from_c_value(json, nullptr); });
  CHECK(message.find("nested deeper than 512") != std::string::npos);
}

TEST_CASE(
    "a plugin handing back a deep or cyclic value fails the call, naming "
    "the plugin",
    "[hostile][plugins]") {
  TempDir dir;
  fs::create_directories(dir / "item");
  for (const auto& [shape, depth] : std::vector<std::pair<std::string, size_t>>{
           {"list", kDeep}, {"cycle", 0}, {"json", kDeep}}) {
    INFO(shape);
    HandlerPtr h = hostile_handler(shape, depth);
    std::string message = message_of<PluginError>(
        [&] { h->metadata(call_for(dir / "item", "item")); });
    CHECK(message.find("test.HostileValueHandler") != std::string::npos);
    CHECK(message.find("nested deeper than 512") != std::string::npos);
    message = message_of<PluginError>([&] { load_with(*h, dir / "item"); });
    CHECK(message.find("ckpt-plugin-hostile.so") != std::string::npos);
    CHECK(message.find("nested deeper than 512") != std::string::npos);
  }
  // Within the limit, the same plugin's values load.
  Value loaded = load_with(*hostile_handler("list", 512), dir / "item");
  CHECK(nesting_depth(loaded) == 512);
}

// ------------------------------------------------------------- the json plugin

TEST_CASE("a data.json nested 70,000 deep is a data loss error naming it",
          "[hostile][json]") {
  TempDir dir;
  fs::path item = saved_json_item(dir, "item");
  write_text(item / "data.json", nested_json(512));
  CHECK(nesting_depth(load_with(*json_handler(), item).as_json()) == 512);
  for (size_t depth : {size_t{513}, size_t{70000}}) {
    write_text(item / "data.json", nested_json(depth));
    std::string message =
        message_of<DataLossError>([&] { load_with(*json_handler(), item); });
    CHECK(message.find((item / "data.json").string()) != std::string::npos);
    CHECK(message.find("nested deeper than 512") != std::string::npos);
  }
}

TEST_CASE("a FIFO data.json is refused at once, not waited on",
          "[hostile][json]") {
  TempDir dir;
  fs::path item = saved_json_item(dir, "item");
  replace_with_fifo(item / "data.json");
  auto loading = without_hanging(
      [&] { return load_with(*json_handler(), item); }, item / "data.json");
  std::string message = error_of<DataLossError>(loading);
  CHECK(message.find((item / "data.json").string() +
                     " is not a regular file") != std::string::npos);
}

TEST_CASE("a data.json that is a symbolic link is not followed",
          "[hostile][json]") {
  TempDir dir;
  fs::path item = saved_json_item(dir, "item");
  replace_with_symlink(item / "data.json", dir / "elsewhere.json");
  std::string message =
      message_of<DataLossError>([&] { load_with(*json_handler(), item); });
  CHECK(message.find((item / "data.json").string() +
                     " is not a regular file") != std::string::npos);
  // A folder in its place is refused alike.
  fs::remove(item / "data.json");
  fs::create_directory(item / "data.json");
  message =
      message_of<DataLossError>([&] { load_with(*json_handler(), item); });
  CHECK(message.find("is not a regular file") != std::string::npos);
}

// ------------------------------------------------------------ the proto plugin

TEST_CASE("a FIFO or symbolic link proto.pbtxt is refused at once",
          "[hostile][proto]") {
  TempDir dir;
  fs::path fifo_item = saved_proto_item(dir, "fifo");
  replace_with_fifo(fifo_item / "proto.pbtxt");
  auto loading = without_hanging([&] { return load_run_config(fifo_item); },
                                 fifo_item / "proto.pbtxt");
  std::string message = error_of<DataLossError>(loading);
  CHECK(message.find((fifo_item / "proto.pbtxt").string() +
                     " is not a regular file") != std::string::npos);

  fs::path link_item = saved_proto_item(dir, "link");
  replace_with_symlink(link_item / "proto.pbtxt", dir / "elsewhere.pbtxt");
  message = message_of<DataLossError>([&] { load_run_config(link_item); });
  CHECK(message.find((link_item / "proto.pbtxt").string() +
                     " is not a regular file") != std::string::npos);
}

TEST_CASE("a truncated or over-deep proto.pbtxt is a data loss error naming it",
          "[hostile][proto]") {
  TempDir dir;
  fs::path item = saved_proto_item(dir, "item");
  const fs::path file = item / "proto.pbtxt";
  const std::string text = read_text(file);
  REQUIRE(text.find('{') != std::string::npos);

  // Cut inside a message.
  write_text(file, text.substr(0, text.find('{') + 1));
  std::string message =
      message_of<DataLossError>([&] { load_run_config(item); });
  CHECK(message.find(file.string()) != std::string::npos);

  // A google.protobuf.Struct 40 deep: 120 nested message fields, past the
  // parser's recursion limit of 100.
  std::string deep_struct = "params { ";
  for (int i = 0; i < 40; ++i) {
    deep_struct += "fields { key: \"k\" value { struct_value { ";
  }
  for (int i = 0; i < 40; ++i) deep_struct += "} } } ";
  deep_struct += "}\n";
  write_text(file, deep_struct);
  message = message_of<DataLossError>([&] { load_run_config(item); });
  CHECK(message.find(file.string()) != std::string::npos);
  CHECK(message.find("recursion limit of 100") != std::string::npos);

  // An Any in an Any in an Any...: text format parses each payload within
  // the same message, without counting it against the recursion limit.
  const std::string any = "[type.googleapis.com/google.protobuf.Any] { ";
  std::string chain = "extra { ";
  chain.reserve(kDeep * (any.size() + 2));
  for (size_t i = 0; i < kDeep; ++i) chain += any;
  for (size_t i = 0; i <= kDeep; ++i) chain += "} ";
  write_text(file, chain);
  message = message_of<DataLossError>([&] { load_run_config(item); });
  CHECK(message.find(file.string()) != std::string::npos);
  CHECK(message.find("nested deeper than 512") != std::string::npos);
}

TEST_CASE("a message with Any packed 1,000 deep saves text that loads back",
          "[hostile][proto]") {
  google::protobuf::Any any;
  Optimizer innermost_payload;
  innermost_payload.set_name("at the bottom");
  any.PackFrom(innermost_payload);
  for (int i = 0; i < 1000; ++i) {
    google::protobuf::Any outer;
    outer.PackFrom(any);
    any = outer;
  }
  RunConfig config;
  *config.mutable_extra() = any;
  TempDir dir;
  save_with(*proto_handler(), dir / "item", proto_value(config));
  RunConfig back = from_proto_value<RunConfig>(load_run_config(dir / "item"));
  CHECK(wire_bytes(back) == wire_bytes(config));
}

// ------------------------------------------------------------ the ckpt tool

TEST_CASE("ckpt cat on a deep data.json exits with an error naming it",
          "[hostile][tool]") {
  TempDir dir;
  // One of ours (whose checksums may catch the change first)...
  save_checkpointables(dir / "ours", {{"config", Value::json({{"lr", 0.1}})}});
  write_text(dir / "ours" / "config" / "data.json", nested_json(70000));
  for (std::string command : {"cat", "cat --json", "verify"}) {
    CommandResult r = ckpt_tool(command + " " + (dir / "ours").string() +
                                (command == "verify" ? "" : " config"));
    INFO(command << ": " << r.output);
    CHECK(r.status == 1);
    CHECK(r.output.find("data.json") != std::string::npos);
  }
  // ...and an Orbax one, which has none: the json plugin sees the file.
  const fs::path orbax =
      fs::path(CKPT_SOURCE_ROOT) / ".." / "shared" / "fixtures" / "orbax" /
      "v1_checkpoints" / "composite_checkpoint" /
      "checkpoint_metadata_present" / "pytree_checkpointable_has_metadata";
  fs::copy(orbax, dir / "orbax", fs::copy_options::recursive);
  CommandResult good =
      ckpt_tool("cat " + (dir / "orbax").string() + " metadata");
  INFO(good.output);
  REQUIRE(good.status == 0);
  write_text(dir / "orbax" / "metadata" / "data.json", nested_json(70000));
  for (std::string command : {"cat", "cat --json"}) {
    CommandResult r =
        ckpt_tool(command + " " + (dir / "orbax").string() + " metadata");
    INFO(command << ": " << r.output);
    CHECK(r.status == 1);
    CHECK(r.output.find("data.json") != std::string::npos);
    CHECK(r.output.find("nested deeper than 512") != std::string::npos);
  }
}

TEST_CASE("ckpt cat shows a part's files without following a link",
          "[hostile][tool]") {
  TempDir dir;
  save_checkpointables(dir / "c", {{"cfg", proto_value(sample_config())}});
  write_text(dir / "secret.txt", "SECRET\n");
  fs::create_symlink(dir / "secret.txt", dir / "c" / "cfg" / "leak.txt");
  CommandResult r = ckpt_tool("cat " + (dir / "c").string() + " cfg");
  INFO(r.output);
  CHECK(r.output.find("SECRET") == std::string::npos);
  CHECK(r.output.find("leak.txt") != std::string::npos);
}

// ---------------------------------------------------------- plugin folders

TEST_CASE(
    "a plugin below a folder others can write to (not sticky) is refused, "
    "naming that folder",
    "[hostile][plugins]") {
  TempDir dir;  // under the system temp folder, which is sticky
  const fs::path open = dir / "open";
  fs::create_directories(open / "plugins");
  fs::copy_file(test_plugin("bad_wrong_major.so"),
                open / "plugins" / "ckpt-plugin-x.so");
  REQUIRE(::chmod(open.c_str(), 0777) == 0);
  const fs::path file = open / "plugins" / "ckpt-plugin-x.so";

  std::string message = message_of<PluginError>([&] { load_plugin(file); });
  CHECK(message.find(file.string()) != std::string::npos);
  CHECK(message.find(open.string() + ", a folder above") != std::string::npos);
  CHECK(message.find("without the sticky bit") != std::string::npos);

  // A folder scan records it and loads nothing from it.
  CHECK(load_plugin_folder(open / "plugins").empty());
  bool recorded = false;
  for (const auto& f : plugin_failures()) {
    recorded |=
        f.path == open / "plugins" &&
        f.reason.find(open.string() + ", a folder above") != std::string::npos;
  }
  CHECK(recorded);

  // Reached through a link in that folder, the same.
  fs::create_directories(dir / "safe");
  fs::copy_file(file, dir / "safe" / "ckpt-plugin-x.so");
  fs::create_symlink(dir / "safe", open / "link");
  message = message_of<PluginError>(
      [&] { load_plugin(open / "link" / "ckpt-plugin-x.so"); });
  CHECK(message.find(open.string() + ", a folder above") != std::string::npos);

  // Allowed explicitly, or made sticky like the temp folder, the file is
  // opened (and fails for its own reason).
  message = message_of<PluginError>(
      [&] { load_plugin(file, /*allow_insecure=*/true); });
  CHECK(message.find("ABI 99.0") != std::string::npos);
  REQUIRE(::chmod(open.c_str(), 01777) == 0);
  message = message_of<PluginError>([&] { load_plugin(file); });
  CHECK(message.find("ABI 99.0") != std::string::npos);
}
