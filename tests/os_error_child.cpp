// A child process for the tests of what happens to a whole process: saves
// under an operating-system restriction set up before ckpt runs (the
// error-model tests), and saves whose handler never ends (the hang tests).
//
//   os_error_child fsize DIR [LIMIT NBYTES]
//       file size limit of LIMIT bytes (default 64 KiB; writes get EFBIG),
//       then saves a pytree holding NBYTES of float32 (default 1 MiB)
//   os_error_child nobody DIR
//       as user nobody (when started as root)
//   Both print "<error kind>\n<message>" of the ckpt::Error the save throws
//   (exit 0), "saved" when it succeeds (exit 3), or why they could not run
//   (exit 2). Anything but a ckpt::Error escapes and aborts the process.
//   Either way the process then exits normally: a crash at exit (a
//   signal) is what the tests look for too.
//
//   os_error_child hang-exit DIR PLUGIN [TIMEOUT_MS]
//       loads PLUGIN (tests/test_plugins/hang_handler.so), starts an async save
//       to DIR/c whose test.HangHandler never ends (it waits for
//       DIR/never), prints "started" and returns from main (exit 0). With
//       TIMEOUT_MS, the save runs in a Context of that async_timeout.
//   os_error_child hang-borrowed DIR PLUGIN TIMEOUT_MS
//       a synchronous save to DIR/c, in a Context of that async_timeout, of
//       a borrowed array (stack memory) to a test.HangHandler released (by
//       creating DIR/release) 3 x TIMEOUT_MS after the start; prints
//       "returned released=<0|1> sum=<the bytes' sum it saved>", or
//       "unexpected <error kind>" and the message; exit 0.
#include <ckpt/checkpoint.h>
#include <ckpt/context.h>
#include <ckpt/errors.h>
#include <ckpt/handler.h>
#include <ckpt/plugins.h>
#include <ckpt/value.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;

namespace {

int os_error_save(const std::string& mode, int argc, char** argv) {
  size_t nbytes = 1 << 20;  // 1 MiB
  if (mode == "fsize") {
    rlim_t limit_bytes = 64 * 1024;
    if (argc == 5) {
      limit_bytes = std::strtoull(argv[3], nullptr, 10);
      nbytes = std::strtoull(argv[4], nullptr, 10);
    } else if (argc != 3) {
      return 2;
    }
    std::signal(SIGXFSZ, SIG_IGN);  // the write fails with EFBIG instead
    rlimit limit{limit_bytes, limit_bytes};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 2;
  } else if (mode == "nobody") {
    if (argc != 3) return 2;
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) {
      std::perror("setuid");
      return 2;
    }
  } else {
    return 2;
  }
  std::vector<float> big(nbytes / sizeof(float), 1.5f);
  ckpt::Value tree = ckpt::Value::dict(
      {{"w", ckpt::Array::from(big)}, {"step", ckpt::Value(3)}});
  try {
    ckpt::save(argv[2], tree);
  } catch (const ckpt::Error& e) {
    std::printf("%s\n%s\n", ckpt::error_kind_name(e.kind()), e.what());
    return 0;
  }
  std::printf("saved\n");
  return 3;
}

// A Context whose checkpointable "item" goes to a test.HangHandler that
// waits for `release_file`.
ckpt::ContextOptions hang_options(const fs::path& release_file) {
  ckpt::ContextOptions o;
  o.checkpointables_options =
      ckpt::CheckpointablesOptions::create_with_handlers(
          {{"item",
            ckpt::make_handler("test.HangHandler",
                               {{"release_file", release_file.string()}})}});
  return o;
}

int hang_exit(const fs::path& dir, const fs::path& plugin, int argc,
              char** argv) {
  ckpt::load_plugin(plugin);
  ckpt::ContextOptions o = hang_options(dir / "never");
  if (argc == 5) {
    o.async_timeout = std::chrono::milliseconds(std::atoll(argv[4]));
  }
  ckpt::Context context(o);
  ckpt::save_checkpointables_async(
      dir / "c",
      {{"item", ckpt::Value::dict(
                    {{"w", ckpt::Array::from(std::vector<float>{1, 2, 3})}})}});
  std::printf("started\n");
  std::fflush(stdout);
  return 0;  // the save is still in flight
}

int hang_borrowed(const fs::path& dir, const fs::path& plugin,
                  const char* timeout_ms) {
  ckpt::load_plugin(plugin);
  const auto timeout = std::chrono::milliseconds(std::atoll(timeout_ms));
  ckpt::ContextOptions o = hang_options(dir / "release");
  o.async_timeout = timeout;
  ckpt::Context context(o);
  // The save starts after `start`, so its deadline passes before the
  // release: 2 x TIMEOUT_MS of margin.
  const auto start = std::chrono::steady_clock::now();
  std::thread releaser([&] {
    std::this_thread::sleep_until(start + 3 * timeout);
    std::ofstream(dir / "release") << "go";
  });
  std::string outcome;
  try {
    // Caller memory the handler reads in its background tier.
    unsigned char bytes[16];
    for (int i = 0; i < 16; ++i) bytes[i] = static_cast<unsigned char>(i + 1);
    ckpt::Value tree = ckpt::Value::dict(
        {{"w", ckpt::Array::borrow(ckpt::DType::kUInt8, {16}, bytes)}});
    ckpt::save_checkpointables(dir / "c", {{"item", tree}});
    const bool released = fs::exists(dir / "release");
    // Whatever the handler read, after the call the memory is gone.
    std::memset(bytes, 0, sizeof bytes);
    auto loaded = ckpt::load_checkpointables(dir / "c", {{"item", {}}});
    outcome = "returned released=" + std::to_string(released ? 1 : 0) +
              " sum=" + std::to_string(loaded.at(0).second.at("sum").as_int());
  } catch (const ckpt::Error& e) {
    outcome = std::string("unexpected ") + ckpt::error_kind_name(e.kind()) +
              "\n" + e.what();
  }
  releaser.join();
  std::printf("%s\n", outcome.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: os_error_child fsize|nobody DIR | fsize DIR LIMIT "
                 "NBYTES | hang-exit DIR PLUGIN [TIMEOUT_MS] | hang-borrowed "
                 "DIR PLUGIN TIMEOUT_MS\n");
    return 2;
  }
  const std::string mode = argv[1];
  try {
    if (mode == "hang-exit" && (argc == 4 || argc == 5)) {
      return hang_exit(argv[2], argv[3], argc, argv);
    }
    if (mode == "hang-borrowed" && argc == 5) {
      return hang_borrowed(argv[2], argv[3], argv[4]);
    }
  } catch (const ckpt::Error& e) {
    std::printf("unexpected %s\n%s\n", ckpt::error_kind_name(e.kind()),
                e.what());
    return 4;
  }
  return os_error_save(mode, argc, argv);
}
