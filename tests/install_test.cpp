// Install: `meson install` into a throwaway root, then a project outside
// the tree (examples/user_handler) builds two plugins and a host app with
// pkg-config alone, and runs with the installed plugins; a CMake project
// (tests/cmake_host) finds the same install with find_package.
#include <catch2/catch.hpp>

#include "test_util.h"

using namespace ckpt::test;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr const char* kSanitize =
    " -Db_sanitize=address,undefined -Db_lundef=false";
#else
constexpr const char* kSanitize = "";
#endif

std::string quiet(const std::string& command) { return command + " 2>&1"; }

// The installed tree under `root` (DESTDIR), found by its pkg-config files.
struct Installed {
  fs::path root, libdir, pkgconfig, bindir;
};

const Installed& installed() {
  static TempDir dir;
  static Installed out = [] {
    Installed i;
    i.root = dir / "root";
    CommandResult r = run_command(
        quiet("DESTDIR=" + i.root.string() +
              " meson install --quiet --no-rebuild -C " + CKPT_BUILD_ROOT));
    INFO(r.output);
    REQUIRE(r.status == 0);
    for (const auto& e : fs::recursive_directory_iterator(i.root)) {
      if (e.path().filename() == "ckpt.pc")
        i.pkgconfig = e.path().parent_path();
      if (e.path().filename() == "ckpt" && e.is_regular_file()) {
        i.bindir = e.path().parent_path();
      }
    }
    REQUIRE(!i.pkgconfig.empty());
    i.libdir = i.pkgconfig.parent_path();
    return i;
  }();
  return out;
}

}  // namespace

TEST_CASE(
    "meson install puts the library, headers, plugins, tool and "
    "pkg-config files under the prefix",
    "[install]") {
  const Installed& i = installed();
  CHECK(fs::exists(i.libdir / "libckpt.so"));
  CHECK(fs::exists(i.libdir / "ckpt" / "plugins" / "ckpt-plugin-json.so"));
  CHECK(fs::exists(i.libdir / "ckpt" / "plugins" / "ckpt-plugin-proto.so"));
  CHECK(fs::exists(i.pkgconfig / "ckpt-sdk.pc"));
  CHECK(fs::exists(i.bindir / "ckpt"));
  bool abi_header = false;
  for (const auto& e : fs::recursive_directory_iterator(i.root)) {
    abi_header |= e.path().filename() == "abi.h";
  }
  CHECK(abi_header);
}

TEST_CASE(
    "the installed ckpt tool finds the installed plugins with no "
    "environment variables",
    "[install]") {
  const Installed& i = installed();
  CommandResult r =
      run_command("env -u CKPT_PLUGIN_PATH -u LD_LIBRARY_PATH " +
                  (i.bindir / "ckpt").string() + " plugins --json");
  INFO(r.output);
  REQUIRE(r.status == 0);
  auto out = nlohmann::json::parse(r.output);
  CHECK(out["builtin_plugin_folder"].get<std::string>().rfind(i.root.string(),
                                                              0) == 0);
  bool json_found = false;
  for (const auto& e : out["entries"]) {
    json_found |= e["typestr"] == "ckpt.json.JsonHandler" &&
                  e["file"].get<std::string>().rfind(i.root.string(), 0) == 0;
  }
  CHECK(json_found);
}

TEST_CASE(
    "a project outside the tree builds plugins and a host app with "
    "pkg-config and uses them through CKPT_PLUGIN_PATH",
    "[install][example]") {
  const Installed& i = installed();
  TempDir work;
  const fs::path build = work / "build";
  const std::string env = "PKG_CONFIG_PATH=" + i.pkgconfig.string() +
                          " PKG_CONFIG_SYSROOT_DIR=" + i.root.string() + " ";
  CommandResult setup = run_command(
      quiet(env + "meson setup " + build.string() + " " + CKPT_SOURCE_ROOT +
            "/examples/user_handler -Dcpp_link_args=-Wl,-rpath," +
            i.libdir.string() + kSanitize));
  INFO(setup.output);
  REQUIRE(setup.status == 0);
  CommandResult compile = run_command(quiet("ninja -C " + build.string()));
  INFO(compile.output);
  REQUIRE(compile.status == 0);
  CHECK(fs::exists(build / "ckpt-plugin-rng.so"));
  CHECK(fs::exists(build / "ckpt-plugin-ini-config.so"));

  CommandResult run = run_command(
      quiet("env -u LD_LIBRARY_PATH CKPT_PLUGIN_PATH=" + build.string() + " " +
            (build / "host").string() + " " + (work / "ckpt").string()));
  INFO(run.output);
  CHECK(run.status == 0);
  CHECK(run.output.find("rng -> example.RngStateHandler") != std::string::npos);
  CHECK(run.output.find("config -> example.IniConfigHandler") !=
        std::string::npos);
  CHECK(run.output.find("notes -> ckpt.json.JsonHandler") != std::string::npos);
  CHECK(run.output.find("draws=17") != std::string::npos);
  CHECK(fs::exists(work / "ckpt" / "config" / "config.ini"));
  CHECK(fs::exists(work / "ckpt" / "rng" / "rng.txt"));
}

TEST_CASE("pkg-config ckpt-proto brings protobuf for ckpt/proto.h",
          "[install]") {
  const Installed& i = installed();
  CommandResult r =
      run_command(quiet("PKG_CONFIG_PATH=" + i.pkgconfig.string() +
                        " PKG_CONFIG_SYSROOT_DIR=" + i.root.string() +
                        " pkg-config --cflags --libs ckpt-proto"));
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("-lckpt") != std::string::npos);
  CHECK(r.output.find("-lprotobuf") != std::string::npos);
}

TEST_CASE(
    "a CMake project finds the installed ckpt with find_package and its "
    "proto component",
    "[install][cmake]") {
  const Installed& i = installed();
  TempDir work;
  const fs::path build = work / "build";
#if defined(__SANITIZE_ADDRESS__)
  const std::string flags = " -DCMAKE_CXX_FLAGS='-fsanitize=address,undefined'";
#else
  const std::string flags;
#endif
  const fs::path prefix = i.libdir.parent_path().parent_path();  // usr/local
  CommandResult configure = run_command(quiet(
      "cmake -S " + std::string(CKPT_SOURCE_ROOT) + "/tests/cmake_host -B " +
      build.string() + " -DCMAKE_PREFIX_PATH=" + prefix.string() + flags));
  INFO(configure.output);
  REQUIRE(configure.status == 0);
  CommandResult compile = run_command(quiet("cmake --build " + build.string()));
  INFO(compile.output);
  REQUIRE(compile.status == 0);
  CommandResult run = run_command(
      quiet("env -u LD_LIBRARY_PATH -u CKPT_PLUGIN_PATH " +
            (build / "cmake_host").string() + " " + (work / "c").string()));
  INFO(run.output);
  CHECK(run.status == 0);
  CHECK(run.output.rfind("ok " + i.libdir.string() + "/ckpt/plugins", 0) == 0);
  CHECK(fs::is_regular_file(work / "c" / "config" / "proto.pbtxt"));
}
