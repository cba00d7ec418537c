/* See fake_host_1_0.h. Everything here is C99 against the ABI 1.0 header;
 * nothing of today's header is visible. */
#include "fake_host_1_0.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "1.0/abi.h"

struct ckpt_error {
  ckpt_error_code code;
  char message[512];
};

static fake_host_1_0_report* current;
static const ckpt_handler_type* registered;

static ckpt_error* error_new(ckpt_error_code code, const char* message) {
  ckpt_error* e = (ckpt_error*)calloc(1, sizeof *e);
  if (!e) abort();
  e->code = code;
  snprintf(e->message, sizeof e->message, "%s", message ? message : "");
  if ((int)code > current->max_error_code) current->max_error_code = code;
  return e;
}
static ckpt_error_code error_code(const ckpt_error* e) { return e->code; }
static const char* error_message(const ckpt_error* e) { return e->message; }
static void error_free(ckpt_error* e) { free(e); }
static void host_log(ckpt_log_level level, const char* message) {
  (void)level;
  (void)message;
}
static ckpt_error* register_handler_type(ckpt_plugin* plugin,
                                         const ckpt_handler_type* type) {
  (void)plugin;
  /* A 1.0 host reads only the fields it knows. */
  if (!registered) registered = type;
  return NULL;
}
static ckpt_error* add_registration(ckpt_plugin* plugin,
                                    const ckpt_registration* r) {
  (void)plugin;
  (void)r;
  return NULL;
}
static ckpt_value_ref* value_retain(ckpt_value_ref* ref) { return ref; }
static void value_release(ckpt_value_ref* ref) { (void)ref; }
static void submit(void (*fn)(void*), void* data) { fn(data); }
static void complete_save(ckpt_completion* c, ckpt_error* error) {
  (void)c;
  if (error) error_free(error);
}
static void complete_load(ckpt_completion* c, ckpt_owned_value value,
                          ckpt_error* error) {
  (void)c;
  if (value.deleter) value.deleter(value.deleter_ctx);
  if (error) error_free(error);
}

static const ckpt_host_api kHost = {
    sizeof(ckpt_host_api), error_new,        error_code,
    error_message,         error_free,       host_log,
    register_handler_type, add_registration, value_retain,
    value_release,         submit,           complete_save,
    complete_load,
};

static int fail(const char* what) {
  snprintf(current->failure, sizeof current->failure, "%s", what);
  return 1;
}

int fake_host_1_0_save(const char* plugin_path, const char* typestr,
                       const char* config_json, const char* tag,
                       const char* data, const char* directory,
                       fake_host_1_0_report* report) {
  void* library;
  ckpt_plugin_entry_fn entry;
  ckpt_plugin_init_args args;
  ckpt_error* error;
  void* instance = NULL;
  memset(report, 0, sizeof *report);
  current = report;
  registered = NULL;
  report->handler_type_size_1_0 = sizeof(ckpt_handler_type);

  library = dlopen(plugin_path, RTLD_NOW | RTLD_LOCAL);
  if (!library) return fail(dlerror());
  *(void**)(&entry) = dlsym(library, CKPT_PLUGIN_ENTRY_SYMBOL);
  if (!entry) return fail("no entry symbol");

  memset(&args, 0, sizeof args);
  args.struct_size = sizeof args;
  args.host_abi_major = 1;
  args.host_abi_minor = 0;
  args.host = &kHost;
  args.plugin = (ckpt_plugin*)&args; /* any non-null handle */
  error = entry(&args);
  report->plugin_abi_major = args.plugin_abi_major;
  report->plugin_abi_minor = args.plugin_abi_minor;
  if (error) {
    error_free(error);
    return 0;
  }
  report->entered = 1;
  if (!registered || strcmp(registered->typestr, typestr) != 0) {
    return fail("the plugin's first handler type is not the one asked for");
  }
  report->handler_type_size = registered->struct_size;

  error = registered->create_instance(registered->type_data, config_json,
                                      &instance);
  if (error) {
    error_free(error);
    return fail("create_instance failed");
  }
  {
    const char* keys[2] = {"type", "data"};
    ckpt_value children[2];
    ckpt_value tree;
    ckpt_call_context context;
    ckpt_save_args save_args;
    memset(children, 0, sizeof children);
    memset(&tree, 0, sizeof tree);
    children[0].struct_size = sizeof(ckpt_value);
    children[0].kind = CKPT_VALUE_STRING;
    children[0].string_value = tag;
    children[0].string_len = strlen(tag);
    children[1] = children[0];
    children[1].string_value = data;
    children[1].string_len = strlen(data);
    tree.struct_size = sizeof(ckpt_value);
    tree.kind = CKPT_VALUE_DICT;
    tree.count = 2;
    tree.keys = keys;
    tree.children = children;

    memset(&context, 0, sizeof context);
    context.struct_size = sizeof context;
    context.checkpointable_name = "x";
    context.directory = directory;
    context.process_count = 1;
    context.is_primary_host = 1;
    context.file_mode = 0644;
    context.options_json = "{}";
    memset(&save_args, 0, sizeof save_args);
    save_args.struct_size = sizeof save_args;
    save_args.context = &context;
    save_args.value = &tree;
    save_args.completion = (ckpt_completion*)&save_args;
    error = registered->save(instance, &save_args);
    if (error) {
      report->save_error_code = error->code;
      snprintf(report->save_error, sizeof report->save_error, "%s",
               error->message);
      error_free(error);
    }
  }
  registered->destroy_instance(instance);
  /* Never dlclose: as the core, keep whatever the plugin left alive. */
  return 0;
}
