/* A host of ABI 1.0 for tests: compiled as C against the frozen 1.0 header
 * (tests/abi/1.0/abi.h), it runs a plugin's entry point and one save the way
 * a 1.0 core does, and reports what the plugin handed it. Declared without
 * ABI types so that C++ tests built against today's header can call it. */
#ifndef CKPT_TESTS_ABI_FAKE_HOST_1_0_H_
#define CKPT_TESTS_ABI_FAKE_HOST_1_0_H_

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fake_host_1_0_report {
  int entered;               /* the entry point returned no error */
  unsigned plugin_abi_major; /* what the plugin reported */
  unsigned plugin_abi_minor;
  size_t handler_type_size;     /* struct_size of the type registered */
  size_t handler_type_size_1_0; /* sizeof(ckpt_handler_type) of ABI 1.0 */
  int save_error_code;          /* code of the error the save returned */
  int max_error_code;           /* highest code given to error_new */
  char save_error[512];         /* its message */
  char failure[256];            /* what went wrong in the harness itself */
} fake_host_1_0_report;

/* Loads the plugin at `plugin_path` (dlopen, RTLD_LOCAL), enters it as an
 * ABI 1.0 host, makes an instance of handler type `typestr` with
 * `config_json`, and saves the tree {"type": tag, "data": data} into
 * `directory`. Returns 0 when the harness ran (see report). */
int fake_host_1_0_save(const char* plugin_path, const char* typestr,
                       const char* config_json, const char* tag,
                       const char* data, const char* directory,
                       fake_host_1_0_report* report);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* CKPT_TESTS_ABI_FAKE_HOST_1_0_H_ */
