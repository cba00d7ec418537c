// Saves a checkpoint under an operating-system restriction set up before
// ckpt runs, for the error-model tests:
//   os_error_child fsize DIR   file size limit of 64 KiB (writes get EFBIG)
//   os_error_child nobody DIR  as user nobody (when started as root)
// Prints "<error kind>\n<message>" of the ckpt::Error the save throws
// (exit 0), "saved" when it succeeds (exit 3), or why it could not run
// (exit 2). Anything but a ckpt::Error escapes and aborts the process.
#include <ckpt/checkpoint.h>
#include <ckpt/errors.h>
#include <ckpt/value.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: os_error_child fsize|nobody DIR\n");
    return 2;
  }
  const std::string mode = argv[1];
  if (mode == "fsize") {
    std::signal(SIGXFSZ, SIG_IGN);  // the write fails with EFBIG instead
    rlimit limit{64 * 1024, 64 * 1024};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 2;
  } else if (mode == "nobody") {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) {
      std::perror("setuid");
      return 2;
    }
  } else {
    return 2;
  }
  std::vector<float> big(1 << 18, 1.5f);  // 1 MiB
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
