/* A handler plugin written in plain C99 against ckpt/abi.h alone: it saves
 * an int as the decimal text of a file `int.txt`, and loads it back.
 *
 * Built twice: against today's header, and against the frozen ABI 1.0
 * header (tests/abi/1.0/abi.h, with -DCKPT_TEST_ABI_1_0), as a plugin
 * shipped for 1.0 that every 1.x core must keep loading. */
#ifdef CKPT_TEST_ABI_1_0
#include "abi.h"
#else
#include <ckpt/abi.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const ckpt_host_api* host;

typedef struct {
  char path[4096];
  long long value;
  ckpt_completion* completion;
} save_job;

typedef struct {
  char path[4096];
  ckpt_completion* completion;
} load_job;

static ckpt_error* create_instance(void* type_data, const char* config,
                                   void** out) {
  (void)type_data;
  (void)config;
  *out = NULL;
  return NULL;
}

static void destroy_instance(void* instance) { (void)instance; }

static int is_handleable(void* instance, const ckpt_value* value) {
  (void)instance;
  return value->kind == CKPT_VALUE_INT;
}

/* Also "accepts" an array spec whose dtype this plugin's header does not
 * know: a host that broke abi.h convention 10 by passing it one would then
 * pick this handler, which a test would see. */
static ckpt_answer is_abstract_handleable(void* instance,
                                          const ckpt_value* value) {
  (void)instance;
  if (value->kind == CKPT_VALUE_ARRAY_SPEC && value->array &&
      (int)value->array->dtype > (int)CKPT_DTYPE_COMPLEX128) {
#ifdef CKPT_TEST_ABI_1_0
    return CKPT_ANSWER_YES;
#else
    return CKPT_ANSWER_NO;
#endif
  }
  return value->kind == CKPT_VALUE_SCALAR_SPEC &&
                 value->int_value == CKPT_VALUE_INT
             ? CKPT_ANSWER_YES
             : CKPT_ANSWER_NO;
}

static void run_save(void* data) {
  save_job* job = (save_job*)data;
  ckpt_error* error = NULL;
  FILE* f = fopen(job->path, "w");
  if (!f || fprintf(f, "%lld", job->value) < 0) {
    error = host->error_new(CKPT_ERROR_INTERNAL, "c99 plugin cannot write");
  }
  if (f) fclose(f);
  host->complete_save(job->completion, error);
  free(job);
}

static ckpt_error* save(void* instance, const ckpt_save_args* args) {
  save_job* job;
  (void)instance;
  job = (save_job*)malloc(sizeof(save_job));
  if (!job) return host->error_new(CKPT_ERROR_INTERNAL, "out of memory");
  snprintf(job->path, sizeof job->path, "%s/int.txt", args->context->directory);
  job->value = (long long)args->value->int_value;
  job->completion = args->completion;
  host->submit(run_save, job);
  return NULL;
}

typedef struct {
  ckpt_value value;
} loaded;

static void free_loaded(void* ctx) { free(ctx); }

static void run_load(void* data) {
  load_job* job = (load_job*)data;
  ckpt_owned_value out;
  loaded* result;
  long long v = 0;
  FILE* f = fopen(job->path, "r");
  memset(&out, 0, sizeof out);
  out.struct_size = sizeof out;
  if (!f || fscanf(f, "%lld", &v) != 1) {
    if (f) fclose(f);
    host->complete_load(job->completion, out,
                        host->error_new(CKPT_ERROR_NOT_FOUND,
                                        "c99 plugin: no readable int.txt"));
    free(job);
    return;
  }
  fclose(f);
  result = (loaded*)calloc(1, sizeof(loaded));
  result->value.struct_size = sizeof(ckpt_value);
  result->value.kind = CKPT_VALUE_INT;
  result->value.int_value = v;
  out.value = &result->value;
  out.deleter = free_loaded;
  out.deleter_ctx = result;
  host->complete_load(job->completion, out, NULL);
  free(job);
}

static ckpt_error* load(void* instance, const ckpt_load_args* args) {
  load_job* job;
  (void)instance;
  job = (load_job*)malloc(sizeof(load_job));
  if (!job) return host->error_new(CKPT_ERROR_INTERNAL, "out of memory");
  snprintf(job->path, sizeof job->path, "%s/int.txt", args->context->directory);
  job->completion = args->completion;
  host->submit(run_load, job);
  return NULL;
}

static const ckpt_handler_type kType = {
    .struct_size = sizeof(ckpt_handler_type),
#ifdef CKPT_TEST_ABI_1_0
    .typestr = "test.C99IntHandler.abi_1_0",
#else
    .typestr = "test.C99IntHandler",
#endif
    .description = "ints as decimal text, from a C99 plugin",
    .create_instance = create_instance,
    .destroy_instance = destroy_instance,
    .is_handleable = is_handleable,
    .is_abstract_handleable = is_abstract_handleable,
    .save = save,
    .load = load,
};

CKPT_EXPORT ckpt_error* ckpt_plugin_entry(ckpt_plugin_init_args* args) {
  args->plugin_abi_major = CKPT_ABI_MAJOR;
  args->plugin_abi_minor = CKPT_ABI_MINOR;
  args->plugin_name = "c99";
  if (args->host_abi_major != CKPT_ABI_MAJOR) return NULL;
  host = args->host;
  return host->register_handler_type(args->plugin, &kType);
}
