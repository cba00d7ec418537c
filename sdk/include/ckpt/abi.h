/*
 * ckpt/abi.h -- the C ABI between the ckpt core and handler plugins.
 *
 * This header is the only contract between libckpt and a plugin. It is C99,
 * self-contained (besides <dlpack/dlpack.h>) and stable: a plugin built
 * against ABI major M and any minor loads in every host of major M.
 *
 * Conventions
 *  1. One entry point. A plugin exports exactly one symbol,
 *     `ckpt_plugin_entry` (CKPT_PLUGIN_ENTRY_SYMBOL), of type
 *     ckpt_plugin_entry_fn. The host calls it once, right after loading the
 *     library, with its ABI version and its function table. The plugin fills
 *     in its own version and registers its handler types through the table.
 *     Majors must match; minors are append-only (new fields and functions go
 *     at the end of structs, never in the middle).
 *  2. Growing structs start with `struct_size`, set by whoever fills the
 *     struct to sizeof() of the struct it was compiled against. A reader
 *     checks CKPT_HAS_FIELD(ptr, field) before touching any field appended
 *     after ABI 1.0.
 *  3. Strings are UTF-8. `const char*` arguments are NUL-terminated and
 *     borrowed for the duration of the call unless stated otherwise. Byte
 *     buffers are pointer + length.
 *  4. Errors are ckpt_error objects with a code and a message. NULL means
 *     OK. Errors are created only through ckpt_host_api.error_new and are
 *     owned by whoever receives them; a plugin that returns an error gives
 *     it to the host. No C++ exception, RTTI or STL type crosses this ABI:
 *     a plugin must catch everything at its boundary.
 *  5. Values (ckpt_value) are read-only tagged trees of plain C data. Values
 *     the host passes in are borrowed for the duration of the call; a plugin
 *     that needs one after the call returns (in background work) either
 *     copies it or calls ckpt_host_api.value_retain. Values a plugin hands
 *     back (ckpt_owned_value) carry their own deleter, which the host calls
 *     exactly once.
 *  6. Arrays are DLPack DLTensors (dlpack 0.6), wrapped in ckpt_array which
 *     adds ckpt's own dtype (dlpack 0.6 has no bool) and ownership flags.
 *     Only kDLCPU memory is accepted.
 *  7. Two tiers. save and load run their blocking part on the caller's
 *     thread. Before returning, a handler either fails (returns an error and
 *     never touches the completion) or takes ownership of the completion and
 *     later signals it exactly once, from any thread, with
 *     complete_save / complete_load. ckpt_host_api.submit runs a function on
 *     the host's background pool; a plugin may use its own threads instead.
 *     Save's blocking part must leave a consistent snapshot behind: once it
 *     returns, the caller may change or free the value.
 *  8. Lifetime. Every handler instance holds its plugin loaded. The host
 *     never unloads a plugin library while anything from it lives (in
 *     practice: never). Handler instances are destroyed with
 *     ckpt_handler_type.destroy_instance, from any thread.
 *  9. Thread safety. Handler instance functions may be called concurrently
 *     from several threads for different checkpoints; host functions are all
 *     thread-safe.
 */
#ifndef CKPT_ABI_H_
#define CKPT_ABI_H_

#include <dlpack/dlpack.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CKPT_ABI_MAJOR 1
#define CKPT_ABI_MINOR 0

#define CKPT_PLUGIN_ENTRY_SYMBOL "ckpt_plugin_entry"

/* True when the struct behind `ptr` was filled by a peer that knows
 * `field`. */
#define CKPT_HAS_FIELD(ptr, type, field) \
  ((ptr)->struct_size >= offsetof(type, field) + sizeof(((type*)0)->field))

#if defined(_WIN32)
#define CKPT_EXPORT __declspec(dllexport)
#else
#define CKPT_EXPORT __attribute__((visibility("default")))
#endif

/* ---------------------------------------------------------------- errors */

typedef enum ckpt_error_code {
  CKPT_ERROR_INTERNAL = 1,
  CKPT_ERROR_INVALID_ARGUMENT = 2,
  CKPT_ERROR_NOT_FOUND = 3,
  CKPT_ERROR_ALREADY_EXISTS = 4,
  CKPT_ERROR_NO_ENTRY = 5,
  CKPT_ERROR_INVALID_LAYOUT = 6,
  CKPT_ERROR_TIMEOUT = 7,
  CKPT_ERROR_PLUGIN = 8,
  CKPT_ERROR_DATA_LOSS = 9,
  CKPT_ERROR_UNIMPLEMENTED = 10
} ckpt_error_code;

/* Opaque; created by ckpt_host_api.error_new, read with error_code and
 * error_message, freed with error_free by whoever owns it. */
typedef struct ckpt_error ckpt_error;

/* ---------------------------------------------------------------- values */

typedef enum ckpt_value_kind {
  /* Concrete leaves. */
  CKPT_VALUE_NONE = 0,
  CKPT_VALUE_BOOL = 1,
  CKPT_VALUE_INT = 2,    /* int64 */
  CKPT_VALUE_DOUBLE = 3, /* float64 */
  CKPT_VALUE_STRING = 4, /* UTF-8, pointer + length */
  CKPT_VALUE_ARRAY = 5,  /* n-d array, see ckpt_array */
  /* Containers of a tree. */
  CKPT_VALUE_DICT = 6, /* ordered string keys */
  CKPT_VALUE_LIST = 7,
  /* Whole-document kinds. */
  CKPT_VALUE_JSON = 8,     /* a JSON document as UTF-8 text */
  CKPT_VALUE_PROTO = 9,    /* a protobuf message, see ckpt_proto */
  CKPT_VALUE_OBJECT = 10,  /* a user object tagged with a typestr */
  CKPT_VALUE_STATEFUL = 11, /* a host StatefulCheckpointable; opaque to
                               plugins, which should answer "not handleable" */
  /* Abstract-only kinds (what a caller passes to load). */
  CKPT_VALUE_ARRAY_SPEC = 12,  /* dtype + shape, no data */
  CKPT_VALUE_SCALAR_SPEC = 13, /* "a leaf of kind scalar_kind" */
  CKPT_VALUE_PLACEHOLDER = 14, /* skip this leaf on load */
  CKPT_VALUE_PROTO_TYPE = 15,  /* a protobuf message type, no data */
  CKPT_VALUE_JSON_TYPE = 16    /* "a JSON document" */
} ckpt_value_kind;

typedef enum ckpt_dtype {
  CKPT_DTYPE_INVALID = 0,
  CKPT_DTYPE_BOOL = 1,
  CKPT_DTYPE_INT8 = 2,
  CKPT_DTYPE_INT16 = 3,
  CKPT_DTYPE_INT32 = 4,
  CKPT_DTYPE_INT64 = 5,
  CKPT_DTYPE_UINT8 = 6,
  CKPT_DTYPE_UINT16 = 7,
  CKPT_DTYPE_UINT32 = 8,
  CKPT_DTYPE_UINT64 = 9,
  CKPT_DTYPE_FLOAT16 = 10,
  CKPT_DTYPE_BFLOAT16 = 11,
  CKPT_DTYPE_FLOAT32 = 12,
  CKPT_DTYPE_FLOAT64 = 13,
  CKPT_DTYPE_COMPLEX64 = 14,
  CKPT_DTYPE_COMPLEX128 = 15
} ckpt_dtype;

/* The memory of this array never changes while the value lives: a handler
 * may retain the value instead of copying the data in save's blocking part. */
#define CKPT_ARRAY_IMMUTABLE 1u

typedef struct ckpt_array {
  size_t struct_size;
  ckpt_dtype dtype;
  uint32_t flags; /* CKPT_ARRAY_* */
  /* data, ndim, shape, strides (in elements, NULL = C-contiguous) and
   * byte_offset as DLPack defines them; dtype mirrors `dtype` (bool is
   * kDLUInt, 8 bits). Device is always kDLCPU. */
  DLTensor tensor;
} ckpt_array;

typedef struct ckpt_proto {
  size_t struct_size;
  const char* full_name; /* e.g. "my.pkg.Config" */
  /* The wire encoding of the message; NULL/0 for CKPT_VALUE_PROTO_TYPE. */
  const uint8_t* bytes;
  size_t bytes_len;
  /* A serialized google.protobuf.FileDescriptorSet holding the message's
   * file and every file it depends on. */
  const uint8_t* descriptor_set;
  size_t descriptor_set_len;
} ckpt_proto;

typedef struct ckpt_object {
  size_t struct_size;
  const char* typestr; /* identifies the object's C type to its handler */
  void* pointer;       /* the host's object; meaning agreed by typestr */
} ckpt_object;

typedef struct ckpt_value ckpt_value;

struct ckpt_value {
  size_t struct_size;
  ckpt_value_kind kind;
  /* CKPT_VALUE_BOOL (0/1), CKPT_VALUE_INT; for CKPT_VALUE_SCALAR_SPEC the
   * ckpt_value_kind of the leaf it stands for (BOOL, INT, DOUBLE, STRING). */
  int64_t int_value;
  double double_value; /* CKPT_VALUE_DOUBLE */
  /* CKPT_VALUE_STRING and CKPT_VALUE_JSON: UTF-8 text, not necessarily
   * NUL-terminated. */
  const char* string_value;
  size_t string_len;
  /* CKPT_VALUE_DICT and CKPT_VALUE_LIST: `count` children; for a dict,
   * keys[i] (NUL-terminated UTF-8) names children[i], in insertion order. */
  size_t count;
  const char* const* keys;
  const ckpt_value* children;
  /* CKPT_VALUE_ARRAY (data set) and CKPT_VALUE_ARRAY_SPEC (tensor.data is
   * NULL; only dtype, ndim and shape count). */
  const ckpt_array* array;
  /* CKPT_VALUE_PROTO and CKPT_VALUE_PROTO_TYPE. */
  const ckpt_proto* proto;
  /* CKPT_VALUE_OBJECT. */
  const ckpt_object* object;
};

/* A value handed from a plugin to the host. The host calls
 * deleter(deleter_ctx) exactly once when it no longer reads `value`. */
typedef struct ckpt_owned_value {
  size_t struct_size;
  const ckpt_value* value;
  void (*deleter)(void* deleter_ctx);
  void* deleter_ctx;
} ckpt_owned_value;

/* Keeps a host value (and its array memory) alive beyond a call. */
typedef struct ckpt_value_ref ckpt_value_ref;

/* ----------------------------------------------------- background work */

/* Host-owned; signalled exactly once with complete_save / complete_load. */
typedef struct ckpt_completion ckpt_completion;

/* ------------------------------------------------------------ handlers */

typedef enum ckpt_answer {
  CKPT_ANSWER_NO = 0,
  CKPT_ANSWER_YES = 1,
  /* "Ask the handler recorded in the checkpoint": counts as no when
   * resolving by capability. */
  CKPT_ANSWER_DEFER = 2
} ckpt_answer;

/* What every handler call learns about where it runs. */
typedef struct ckpt_call_context {
  size_t struct_size;
  const char* checkpointable_name;
  /* The handler's own folder: <checkpoint>/<name> (a temporary checkpoint
   * folder during save). Exists when save and load are called. */
  const char* directory;
  int32_t process_index;
  int32_t process_count;
  int32_t is_primary_host; /* 1: write shared (non-array) files */
  uint32_t file_mode;      /* permission bits for new files, e.g. 0644 */
  /* Handler-specific options from the host's Context as a JSON object text
   * (e.g. pytree options), never NULL ("{}" when empty). */
  const char* options_json;
} ckpt_call_context;

typedef struct ckpt_save_args {
  size_t struct_size;
  const ckpt_call_context* context;
  const ckpt_value* value; /* borrowed for this call */
  /* Keeps `value` alive after the call: pass to value_retain. */
  ckpt_value_ref* value_ref;
  /* Signal with complete_save once every file is written (or failed). */
  ckpt_completion* completion;
} ckpt_save_args;

typedef struct ckpt_load_args {
  size_t struct_size;
  const ckpt_call_context* context;
  const ckpt_value* abstract_value; /* NULL: load as saved */
  ckpt_value_ref* abstract_ref;     /* keeps abstract_value alive */
  /* Signal with complete_load handing over the loaded value. */
  ckpt_completion* completion;
} ckpt_load_args;

typedef struct ckpt_metadata_args {
  size_t struct_size;
  const ckpt_call_context* context;
  /* Out: the metadata (an abstract value usable as a load target), or
   * NULL value for "none". Synchronous. */
  ckpt_owned_value* result;
} ckpt_metadata_args;

/* A handler type: what a plugin registers. Instances are made from a type
 * plus an optional JSON configuration (e.g. {"filename": "cfg.json"}). */
typedef struct ckpt_handler_type {
  size_t struct_size;
  /* Stable id recorded in checkpoints. Must outlive the plugin (static). */
  const char* typestr;
  /* Older or foreign ids this handler can also load. */
  const char* const* secondary_typestrs;
  size_t num_secondary_typestrs;
  /* A one-line human description, for `ckpt plugins`. May be NULL. */
  const char* description;
  /* Passed back as the first argument of create_instance. */
  void* type_data;

  /* config_json: a JSON object as text, never NULL ("{}" for none). */
  ckpt_error* (*create_instance)(void* type_data, const char* config_json,
                                 void** out_instance);
  void (*destroy_instance)(void* instance);

  /* Never fail: an error inside answers no. */
  int (*is_handleable)(void* instance, const ckpt_value* value);
  ckpt_answer (*is_abstract_handleable)(void* instance,
                                        const ckpt_value* abstract_value);

  /* Blocking tier on the caller's thread; see convention 7. */
  ckpt_error* (*save)(void* instance, const ckpt_save_args* args);
  ckpt_error* (*load)(void* instance, const ckpt_load_args* args);
  /* May be NULL: metadata unsupported. */
  ckpt_error* (*metadata)(void* instance, const ckpt_metadata_args* args);
} ckpt_handler_type;

/* A default registry entry a plugin asks for: the handler type with a
 * configuration, general (checkpointable_name NULL) or scoped to one name. */
typedef struct ckpt_registration {
  size_t struct_size;
  const char* typestr;          /* a type this plugin registered */
  const char* checkpointable_name; /* NULL: general */
  const char* config_json;      /* NULL: "{}" */
} ckpt_registration;

/* ------------------------------------------------------------ the host */

typedef struct ckpt_plugin ckpt_plugin; /* host's handle of one plugin */

typedef enum ckpt_log_level {
  CKPT_LOG_DEBUG = 0,
  CKPT_LOG_INFO = 1,
  CKPT_LOG_WARNING = 2,
  CKPT_LOG_ERROR = 3
} ckpt_log_level;

typedef struct ckpt_host_api {
  size_t struct_size;

  ckpt_error* (*error_new)(ckpt_error_code code, const char* message);
  ckpt_error_code (*error_code)(const ckpt_error* error);
  const char* (*error_message)(const ckpt_error* error); /* lives with it */
  void (*error_free)(ckpt_error* error);

  void (*log)(ckpt_log_level level, const char* message);

  /* Registration, only during ckpt_plugin_entry. The type struct and its
   * strings must outlive the plugin (static storage). */
  ckpt_error* (*register_handler_type)(ckpt_plugin* plugin,
                                       const ckpt_handler_type* type);
  ckpt_error* (*add_registration)(ckpt_plugin* plugin,
                                  const ckpt_registration* registration);

  /* Keeps a host value alive after the call that lent it; release once. */
  ckpt_value_ref* (*value_retain)(ckpt_value_ref* ref);
  void (*value_release)(ckpt_value_ref* ref);

  /* Runs fn(data) on the host's background pool. */
  void (*submit)(void (*fn)(void* data), void* data);

  /* Exactly once per completion. error: NULL = success (ownership passes to
   * the host). For load, `value` is the loaded value (ownership passes to
   * the host, which calls its deleter exactly once); ignored on error. */
  void (*complete_save)(ckpt_completion* completion, ckpt_error* error);
  void (*complete_load)(ckpt_completion* completion, ckpt_owned_value value,
                        ckpt_error* error);
} ckpt_host_api;

/* -------------------------------------------------------- entry point */

typedef struct ckpt_plugin_init_args {
  size_t struct_size;
  /* In. */
  uint32_t host_abi_major;
  uint32_t host_abi_minor;
  const ckpt_host_api* host; /* valid for the life of the process */
  ckpt_plugin* plugin;       /* pass to register_handler_type */
  /* Out: the plugin's own ABI version and a short name (static string). */
  uint32_t plugin_abi_major;
  uint32_t plugin_abi_minor;
  const char* plugin_name;
} ckpt_plugin_init_args;

/* Returns NULL on success. On a major mismatch a plugin fills its version
 * and returns an error (or NULL: the host checks the versions itself). */
typedef ckpt_error* (*ckpt_plugin_entry_fn)(ckpt_plugin_init_args* args);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* CKPT_ABI_H_ */
