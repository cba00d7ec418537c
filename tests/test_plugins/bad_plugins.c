/* Broken plugins, one per preprocessor case (see tests/meson.build). */
#include <ckpt/abi.h>

#if defined(BAD_WRONG_MAJOR)
CKPT_EXPORT ckpt_error* ckpt_plugin_entry(ckpt_plugin_init_args* args) {
  args->plugin_abi_major = CKPT_ABI_MAJOR + 98;
  args->plugin_abi_minor = 0;
  args->plugin_name = "wrong-major";
  return NULL;
}
#elif defined(BAD_NO_ENTRY)
CKPT_EXPORT int not_the_entry_point(void) { return 42; }
#elif defined(BAD_INIT_FAILS)
CKPT_EXPORT ckpt_error* ckpt_plugin_entry(ckpt_plugin_init_args* args) {
  args->plugin_abi_major = CKPT_ABI_MAJOR;
  args->plugin_abi_minor = CKPT_ABI_MINOR;
  args->plugin_name = "init-fails";
  return args->host->error_new(CKPT_ERROR_INTERNAL,
                               "the licence server is unreachable");
}
#endif
