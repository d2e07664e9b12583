/*
 * evh/plugin.h -- the evhost plugin C ABI, version 1.3.
 *
 * A plugin is a shared object that exports exactly one symbol,
 * evh_plugin_entry(), returning a static descriptor. evhost (the host) checks
 * the file (owner, modes, an optional sha256 pin, the ABI note below: see
 * docs/config.md, "Plugin trust"), loads it with dlopen(RTLD_NOW |
 * RTLD_LOCAL), checks the descriptor's ABI version, asks validate_config()
 * (when the plugin has one) whether each instance's config is right, calls
 * init() once per instance configured in YAML, calls handle() once per routed event,
 * and shutdown() once per instance before unloading.
 *
 * This header is C99 (and C++17) with standard headers only.
 *
 * VERSIONING
 *   EVH_ABI_MAJOR changes only on a breaking change; the host refuses a plugin
 *   built for another major version. EVH_ABI_MINOR grows when fields or host
 *   functions are appended. Every struct that crosses the boundary begins with
 *   struct_size, so each side reads only what the other side compiled:
 *     - the host accepts a descriptor from an older minor and never reads past
 *       its struct_size;
 *     - a plugin must check api->struct_size (EVH_API_HAS(api, fn)) before
 *       calling a host function added after 1.0;
 *     - the host refuses a plugin that needs a newer minor than its own.
 *   Nothing is ever removed or reordered within a major version.
 *
 * HISTORY
 *   1.0  the first release.
 *   1.1  host functions status_text, metric_register_spec (labels,
 *        histograms: EVH_METRIC_HISTOGRAM, evh_metric_spec) and
 *        metric_observe; the descriptor's optional health callback. A 1.1
 *        host loads 1.0 plugins unchanged; a plugin built against 1.1 needs
 *        a 1.1 host (an older one refuses it with a clear message).
 *        Later, without a bump: the ABI note (EVH_ABI_NOTE_*), which lets
 *        the host refuse an incompatible plugin before loading it.
 *   1.2  the descriptor flag EVH_PLUGIN_OWN_IDEMPOTENCY. A 1.2 host loads 1.0
 *        and 1.1 plugins unchanged (it reads the flag only from a 1.2
 *        descriptor); a 1.2 plugin needs a 1.2 host.
 *   1.3  the descriptor's optional validate_config callback (and its
 *        evh_config_error_fn), which checks an instance's config before
 *        anything runs: `evhost --check-config` and start-up report its
 *        errors with the YAML file:line. A 1.3 host loads 1.0 to 1.2 plugins
 *        unchanged (their config is checked by init() alone, as before); a
 *        1.3 plugin needs a 1.3 host.
 *
 * OWNERSHIP (the rules everything below follows unless its comment says
 * otherwise)
 *   1. Arguments are borrowed for the duration of the call. Copy what you
 *      keep. evh_str values are NOT NUL-terminated unless stated.
 *   2. Whoever allocates frees: init() creates the instance, shutdown()
 *      destroys it; neither side frees the other's memory.
 *   3. Error text goes through api->set_error / api->call_set_error /
 *      api->complete, which copy it. Nothing is allocated across the boundary.
 *   4. Every asynchronous callback given to the host (evh_reply_cb, post) is
 *      called exactly once, also when the host shuts down (with an error
 *      status).
 *
 * THREADS
 *   The host runs one event loop thread. init(), shutdown() and the handle()
 *   of an inline plugin run on it and must never block (no sleeps, no file or
 *   network I/O, no waiting on locks held for long). A plugin that sets
 *   EVH_PLUGIN_BLOCKING has handle() called on a bounded worker pool instead,
 *   possibly concurrently (see max_concurrency). Each host function below says
 *   from which threads it may be called.
 */
#ifndef EVH_PLUGIN_H
#define EVH_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Versions                                                                  */
/* ------------------------------------------------------------------------ */

/* A cast that is an old-style cast in C and a static_cast in C++, so that
 * the macros below stay clean under C++ -Wold-style-cast. */
#ifdef __cplusplus
#define EVH__CAST(type, x) static_cast<type>(x)
#define EVH__NULL nullptr
#else
#define EVH__CAST(type, x) ((type)(x))
#define EVH__NULL 0
#endif

#define EVH_ABI_MAJOR 1 /* changes on a breaking change only */
#define EVH_ABI_MINOR 3 /* grows with every append */
#define EVH_ABI_MAKE_VERSION(major, minor) ((EVH__CAST(uint32_t, major) << 16) | (EVH__CAST(uint32_t, minor) & 0xFFFFu))
#define EVH_ABI_VERSION EVH_ABI_MAKE_VERSION(EVH_ABI_MAJOR, EVH_ABI_MINOR)
#define EVH_ABI_VERSION_MAJOR(v) (EVH__CAST(uint32_t, v) >> 16)
#define EVH_ABI_VERSION_MINOR(v) (EVH__CAST(uint32_t, v) & 0xFFFFu)

/* The ABI note. Every object file that includes this header carries, in an
 * ELF note section, the ABI version it was compiled against, so that the host
 * reads it from the file -- before dlopen(), before any of the plugin's code
 * (ELF constructors included) runs -- and refuses a plugin of another major
 * or a newer minor without loading it. The note is a standard ELF note
 * (see elf(5)): owner "EVH", type EVH_ABI_NOTE_TYPE, descriptor two 32-bit
 * words in the object's byte order, the major then the minor. It is data
 * only: nothing to call, nothing to write in a plugin's source; recompiling
 * against this header adds it. A plugin built before it existed (the 1.0
 * SDK) has no note: the host then checks the descriptor's abi_version after
 * dlopen, as it always did.
 * NO ABI BUMP: the note adds no field and no function; a host that does not
 * read notes ignores it, and a host that does accepts a plugin without one.
 * Define EVH_NO_ABI_NOTE before including this header to leave it out (for
 * a test that writes its own note, say). */
#define EVH_ABI_NOTE_SECTION ".note.evh.abi"
#define EVH_ABI_NOTE_NAME "EVH"
#define EVH_ABI_NOTE_TYPE 1

typedef struct evh__abi_note {
  uint32_t namesz; /* sizeof EVH_ABI_NOTE_NAME, NUL included: 4 */
  uint32_t descsz; /* 8: major and minor */
  uint32_t type;   /* EVH_ABI_NOTE_TYPE */
  char name[4];    /* "EVH" */
  uint32_t major;
  uint32_t minor;
} evh__abi_note;

#if defined(__ELF__) && defined(__GNUC__) && !defined(EVH_NO_ABI_NOTE)
/* `used` keeps it in every object even though nothing refers to it; the
 * linker keeps SHT_NOTE sections (also under --gc-sections) and gathers them
 * into a PT_NOTE segment. One copy per object file that includes the header:
 * the host reads them all. */
static const evh__abi_note evh__abi_note_of_this_object
    __attribute__((section(EVH_ABI_NOTE_SECTION), used, aligned(4))) = {
        4, 8, EVH_ABI_NOTE_TYPE, EVH_ABI_NOTE_NAME, EVH_ABI_MAJOR, EVH_ABI_MINOR};
#endif

/* The name of the one symbol a plugin exports, for dlsym(). */
#define EVH_PLUGIN_ENTRY_SYMBOL "evh_plugin_entry"

/* True when a struct whose first field is struct_size contains `field`
 * completely: use before reading any field appended after 1.0. */
#define EVH_HAS_FIELD(ptr, type, field) \
  ((ptr) != EVH__NULL && (ptr)->struct_size >= offsetof(type, field) + sizeof(EVH__CAST(type*, EVH__NULL)->field))
/* True when the host API table carries host function `fn`. */
#define EVH_API_HAS(api, fn) EVH_HAS_FIELD(api, evh_host_api, fn)

#if defined(_WIN32)
#define EVH_PLUGIN_VISIBLE __declspec(dllexport)
#else
#define EVH_PLUGIN_VISIBLE __attribute__((visibility("default")))
#endif
#ifdef __cplusplus
#define EVH_PLUGIN_EXPORT extern "C" EVH_PLUGIN_VISIBLE
#else
#define EVH_PLUGIN_EXPORT EVH_PLUGIN_VISIBLE
#endif

/* ------------------------------------------------------------------------ */
/* Basic types                                                               */
/* ------------------------------------------------------------------------ */

/* Status codes. A fixed-width integer, never an enum type, in the ABI.
 * handle() answers EVH_OK, EVH_RETRY, EVH_REJECT or EVH_PENDING. Host
 * functions answer EVH_OK or a negative EVH_ERR_* code. init() answers
 * EVH_OK or any other value for failure. */
typedef int32_t evh_status;
enum {
  EVH_OK = 0,      /* done, successfully */
  EVH_RETRY = 1,   /* transient failure: the host retries per the route's policy */
  EVH_REJECT = 2,  /* permanent failure: no retry; the event is dead-lettered */
  EVH_PENDING = 3, /* handle() only: the outcome comes later via api->complete() */

  EVH_ERR_INVALID = -1,     /* an argument is invalid (NULL, wrong size, bad name) */
  EVH_ERR_NOMEM = -2,       /* out of memory */
  EVH_ERR_UNSUPPORTED = -3, /* not supported by this host or in this context */
  EVH_ERR_INTERNAL = -4,    /* a bug or unexpected failure; see the host log */
  EVH_ERR_UNAVAILABLE = -5, /* Redis is not connected, or the command failed in transit */
  EVH_ERR_CANCELLED = -6,   /* the host is shutting down; the request was not carried out */
  EVH_ERR_STATE = -7        /* called at the wrong time (e.g. complete() on a call that is over) */
};

/* Log levels, for api->log. */
typedef int32_t evh_log_level;
enum {
  EVH_LOG_TRACE = 0,
  EVH_LOG_DEBUG = 1,
  EVH_LOG_INFO = 2,
  EVH_LOG_WARN = 3,
  EVH_LOG_ERROR = 4,
  EVH_LOG_CRITICAL = 5
};

/* A byte string: pointer and length. Not NUL-terminated unless a comment says
 * so. ptr may be NULL when len is 0. Borrowed (rule 1) unless stated. */
typedef struct evh_str {
  const char* ptr;
  size_t len;
} evh_str;

/* Opaque handles owned by the host. */
typedef struct evh_host evh_host;     /* one plugin instance's handle; valid from init() until shutdown() returns */
typedef struct evh_call evh_call;     /* one handle() invocation; safe to pass back for ever (see handle) */
typedef struct evh_metric evh_metric; /* a registered metric; valid until shutdown() returns */

/* ------------------------------------------------------------------------ */
/* Events                                                                    */
/* ------------------------------------------------------------------------ */

/* Flags in evh_event.flags. */
enum {
  EVH_EVENT_FROM_BATCH = 1u << 0, /* unpacked from a BATCH envelope */
  EVH_EVENT_REDELIVERED = 1u << 1 /* a stream entry delivered before (recovery or claim) */
};

/* A read-only view of one event, decoded by the host.
 * OWNERSHIP: everything is borrowed; valid until handle() returns, even when
 *   handle() answers EVH_PENDING. Copy what you need later.
 * THREAD: read it on the thread handle() was called on. */
typedef struct evh_event {
  uint32_t struct_size;   /* sizeof(evh_event) as compiled into the host */
  uint32_t attempt;       /* 1 on the first call for this event and plugin, 2 on the first retry, ... */
  uint32_t max_attempts;  /* the route's retry limit; attempt == max_attempts is the last try */
  uint32_t flags;         /* EVH_EVENT_* bits */
  evh_str channel;        /* channel published on, without the environment prefix (for a pattern
                             subscription: the matching channel, not the pattern) */
  evh_str redis_channel;  /* channel or stream key as seen on Redis, prefix included */
  evh_str event_type;     /* envelope eventType (CloudEvents: type) */
  evh_str event_id;       /* envelope eventId (CloudEvents: id) */
  evh_str correlation_id; /* envelope correlationId; len 0 when absent */
  evh_str timestamp;      /* envelope timestamp as sent (ISO-8601 text or epoch ms digits) */
  int64_t timestamp_ms;   /* the same timestamp in milliseconds since the Unix epoch */
  evh_str payload;        /* JSON text of the payload object (CloudEvents: data) */
  evh_str envelope;       /* JSON text of this event's whole envelope */
  evh_str raw;            /* the message exactly as received; for a batch member, the whole batch */
  evh_str delivery_id;    /* stream entry id (e.g. "1700000000000-0"); len 0 for Pub/Sub */
  /* When the route has `idempotency:`, the Redis key that marks this
   * (plugin, eventId) handled, and its TTL; len 0 and 0 otherwise. The host
   * skips the call when the key exists and sets it after EVH_OK -- but a
   * crash between the plugin's own write and that mark repeats the effect
   * once. A plugin that writes to Redis can close that gap: set the key
   * itself, atomically with its effect (e.g. in its Lua script:
   * `if redis.call('SET', key, 1, 'NX', 'PX', ttl) then ... end`), and
   * declare EVH_PLUGIN_OWN_IDEMPOTENCY (ABI 1.2) so that the host leaves the
   * key to it. On a Redis Cluster the script's keys must share a slot: such
   * a plugin may put the mark in its keys' slot by adding their hash tag to
   * this key (the bundled product plugin makes "dev:{tag}:evh:done:..." of
   * "dev:evh:done:..."); the host never reads or writes the key of a plugin
   * with EVH_PLUGIN_OWN_IDEMPOTENCY, so the name is the plugin's to choose,
   * as long as it keeps choosing it the same way. */
  evh_str idempotency_key;
  int64_t idempotency_ttl_ms;
} evh_event;

/* ------------------------------------------------------------------------ */
/* Redis replies                                                             */
/* ------------------------------------------------------------------------ */

typedef int32_t evh_reply_type;
enum {
  EVH_REPLY_STRING = 1,  /* bulk string: str */
  EVH_REPLY_ARRAY = 2,   /* elements / element */
  EVH_REPLY_INTEGER = 3, /* integer */
  EVH_REPLY_NIL = 4,     /* no value */
  EVH_REPLY_STATUS = 5,  /* simple string such as OK: str */
  EVH_REPLY_ERROR = 6    /* error reply from Redis, e.g. "WRONGTYPE ...": str */
};

/* A Redis reply, a tree of these.
 * OWNERSHIP: borrowed; valid only during the evh_reply_cb call. */
typedef struct evh_reply {
  uint32_t struct_size;                   /* sizeof(evh_reply) as compiled into the host */
  evh_reply_type type;                    /* EVH_REPLY_* */
  int64_t integer;                        /* EVH_REPLY_INTEGER */
  evh_str str;                            /* STRING, STATUS, ERROR; NUL-terminated */
  size_t elements;                        /* ARRAY: number of elements */
  const struct evh_reply* const* element; /* ARRAY: elements[0 .. elements-1] */
} evh_reply;

/* Called once per request made with api->redis_command or api->publish.
 * status: EVH_OK when Redis answered (reply may still be EVH_REPLY_ERROR);
 *   EVH_ERR_UNAVAILABLE when the connection failed before an answer (the
 *   command may or may not have run); EVH_ERR_CANCELLED at shutdown.
 * reply: non-NULL exactly when status is EVH_OK.
 * THREAD: always the loop thread, whichever thread made the request. Must not
 *   block. */
typedef void (*evh_reply_cb)(void* user_data, evh_status status, const evh_reply* reply);

/* ------------------------------------------------------------------------ */
/* Host functions                                                            */
/* ------------------------------------------------------------------------ */

typedef int32_t evh_metric_kind;
enum {
  EVH_METRIC_COUNTER = 1,  /* only grows: metric_add with delta >= 0 */
  EVH_METRIC_GAUGE = 2,    /* any value: metric_add or metric_set */
  EVH_METRIC_HISTOGRAM = 3 /* ABI 1.1: observations counted in buckets: metric_observe.
                              Registered with metric_register_spec only. */
};

/* ABI 1.1: one label of a metric.
 * name: [a-z_][a-z0-9_]*, at most 64 bytes, not "plugin" (the host's: the
 *   instance name), not "le" (histograms' buckets), not starting "__".
 * value: printable ASCII (0x20 to 0x7e), at most 256 bytes. Keep the set of values small
 *   and fixed (an event type the plugin knows, a table name) -- never an id
 *   or anything taken from events: each label set is a series the host keeps
 *   until the instance shuts down.
 * OWNERSHIP: borrowed for the metric_register_spec call. */
typedef struct evh_metric_label {
  evh_str name;
  evh_str value;
} evh_metric_label;

/* ABI 1.1: what metric_register_spec registers: a metric of any kind, with
 * labels, or a histogram with its buckets.
 * OWNERSHIP: borrowed for the call; the host copies what it keeps.
 * Versioned like every struct that crosses the boundary: set struct_size to
 * sizeof(evh_metric_spec); the host reads only that much (fields appended
 * later read as zero from an older plugin). */
typedef struct evh_metric_spec {
  uint32_t struct_size;           /* sizeof(evh_metric_spec) as compiled into the plugin */
  evh_metric_kind kind;           /* EVH_METRIC_COUNTER, _GAUGE or _HISTOGRAM */
  evh_str name;                   /* as for metric_register: [a-z0-9_]+, at most 128 bytes */
  evh_str help;                   /* one line of help text (copied) */
  const evh_metric_label* labels; /* label_count labels (may be NULL when label_count is 0) */
  uint32_t label_count;           /* at most 8 */
  uint32_t bucket_count;          /* HISTOGRAM: 1 to 32; otherwise 0 */
  const double* buckets;          /* HISTOGRAM: the buckets' upper bounds in the metric's unit
                                     (seconds for a name ending _seconds), finite and strictly
                                     increasing, kept to a resolution of 1e-6 (two bounds equal at
                                     that resolution are refused); +Inf is implicit */
} evh_metric_spec;

/* ABI 1.1: what a plugin's health callback answers (evh_plugin_desc.health). */
typedef int32_t evh_health;
enum {
  EVH_HEALTH_OK = 0,       /* working */
  EVH_HEALTH_DEGRADED = 1, /* working, with a problem worth showing (/status shows it; ready all the same) */
  EVH_HEALTH_DOWN = 2      /* cannot do its work now: evhost reports itself not ready (/readyz) */
};

/* ABI 1.3: how validate_config (evh_plugin_desc) reports one problem with a
 * config block.
 * ctx: the ctx validate_config was given.
 * pointer: where the problem is, as a JSON Pointer (RFC 6901) into
 *   config_json: "/max_length", "/read_model/product_key", "/redact/2"
 *   ("~1" for a '/' in a key, "~0" for a '~'); "" for the block as a whole.
 *   For a required key that is missing, its pointer all the same: the host
 *   shows the nearest line it knows (the parent's, or the `config:` key's).
 * message: one line saying what is wrong and what is allowed, without the
 *   key (the host shows it): "must be an integer from 1 to 100000000, got
 *   0". Quote the value when that helps; the host masks, wherever they
 *   appear, the values ${VAR} references took from the environment (they
 *   may be secrets).
 * Neither needs to be NUL-terminated; both are copied before report
 * returns, and control characters are escaped. The host keeps the first 100
 * problems of a call (and counts the rest) and cuts a message at 1,000 bytes.
 * THREAD: the thread running validate_config, during that call only. */
typedef void (*evh_config_error_fn)(void* ctx, evh_str pointer, evh_str message);

/* The table of host functions, filled by the host and passed to init().
 * OWNERSHIP: owned by the host; the pointer stays valid until shutdown()
 *   returns. Keep it in your instance.
 * Append-only: check EVH_API_HAS(api, fn) for anything added after 1.0. */
typedef struct evh_host_api {
  uint32_t struct_size; /* sizeof(evh_host_api) as compiled into the host */
  uint32_t abi_version; /* the host's EVH_ABI_VERSION */

  /* Writes one log line under this instance's name (msg is copied).
   * THREAD: any. */
  void (*log)(evh_host* host, evh_log_level level, evh_str msg);

  /* Nonzero when `level` would be logged: skip formatting otherwise.
   * THREAD: any. */
  int32_t (*log_enabled)(evh_host* host, evh_log_level level);

  /* Records why init() is about to fail (copied). Shown in the host's
   * refusal message. THREAD: the thread running init(). */
  void (*set_error)(evh_host* host, evh_str msg);

  /* Attaches a message to the outcome of a handle() call answering
   * EVH_RETRY or EVH_REJECT (copied; the last one wins). It ends up in logs
   * and dead-letter entries. On a call that is over (see handle) it does
   * nothing, and the host logs it. THREAD: the thread running that handle(). */
  void (*call_set_error)(evh_call* call, evh_str msg);

  /* Gives the outcome of a call whose handle() answered EVH_PENDING: status
   * is EVH_OK, EVH_RETRY or EVH_REJECT, msg an optional message (copied).
   * Call it once per pending call. Returns EVH_OK when the outcome is taken;
   * EVH_ERR_STATE, doing nothing, when the call is over (see handle: already
   * completed, handle() answered something else, its timeout_ms passed, the
   * shutdown deadline came); EVH_ERR_INVALID for another status;
   * EVH_ERR_CANCELLED when the host no longer takes outcomes (it is exiting).
   * THREAD: any. */
  evh_status (*complete)(evh_call* call, evh_status status, evh_str msg);

  /* Publishes `message` on `channel` with the environment prefix prepended
   * (channel "jollyjet:events:x" becomes "dev:jollyjet:events:x"). cb may be
   * NULL (failures are then logged by the host); otherwise it is called
   * exactly once with the reply (an integer: the number of receivers).
   * Sent as SPUBLISH when the host's config marks the channel `sharded: true`
   * (sharded Pub/Sub), as PUBLISH otherwise (since evhost 0.1.0, ABI 1.3;
   * nothing changes for the caller).
   * Returns EVH_OK when queued, or an error and then cb is NOT called.
   * THREAD: any; from a worker thread the request is marshalled to the loop. */
  evh_status (*publish)(evh_host* host, evh_str channel, evh_str message, evh_reply_cb cb, void* user_data);

  /* Sends one Redis command (argv[0] is the command name) on the host's
   * command connection. Keys are NOT prefixed: build them yourself from
   * env_prefix(). The argv strings are copied before return. cb as for
   * publish. THREAD: any; from a worker thread the request is marshalled to
   * the loop.
   * Under a Redis Cluster (redis.cluster) the command goes to the master
   * owning its key's slot; nothing in the call changes. The key is the
   * argument Redis's own COMMAND table names as the command's first key,
   * the first of KEYS for EVAL, EVALSHA and FCALL (numkeys > 0), the first
   * stream after STREAMS for XREAD(GROUP); a command naming no key (PING,
   * PUBLISH) goes to any master. A node's MOVED / ASK redirect is followed
   * by the host, so a command the host routes wrong still lands right. Keys
   * one command or script uses together must share a slot -- give them one
   * hash tag ("{order:42}:lines", "{order:42}:total") -- or Redis answers
   * CROSSSLOT, which cb receives as an error reply. */
  evh_status (*redis_command)(evh_host* host, int32_t argc, const evh_str* argv, evh_reply_cb cb, void* user_data);

  /* The environment prefix (e.g. "dev:"), NUL-terminated, valid until
   * shutdown() returns. THREAD: any. */
  evh_str (*env_prefix)(evh_host* host);

  /* Registers (or finds) a metric of this instance. name: [a-z0-9_]+, which
   * the host exports with the instance's name as a label. help is copied.
   * Returns NULL on an invalid name or a kind clash. The handle is valid
   * until shutdown() returns. THREAD: any. */
  evh_metric* (*metric_register)(evh_host* host, evh_str name, evh_metric_kind kind, evh_str help);

  /* Adds delta to a metric (atomic). THREAD: any. */
  void (*metric_add)(evh_metric* metric, int64_t delta);

  /* Sets a gauge (atomic); ignored for counters. THREAD: any. */
  void (*metric_set)(evh_metric* metric, int64_t value);

  /* Runs fn(user_data) on the loop thread soon, exactly once; at shutdown,
   * still before shutdown() is called. Returns EVH_OK, or an error and fn
   * will not run. THREAD: any. */
  evh_status (*post)(evh_host* host, void (*fn)(void* user_data), void* user_data);

  /* Added in ABI 1.1 -- check EVH_API_HAS(api, fn) before calling. */

  /* The name of a status code: "ok", "retry", "reject", "pending",
   * "err_invalid", "err_nomem", "err_unsupported", "err_internal",
   * "err_unavailable", "err_cancelled", "err_state"; "unknown" for any
   * other value. Static and NUL-terminated: never free it. THREAD: any. */
  const char* (*status_text)(evh_status status);

  /* Registers (or finds) the metric `spec` describes: one series per
   * (name, label values). The same name must keep the same kind, help,
   * label names and buckets. Exported as metric_register's are, with the
   * labels added. Returns NULL -- logged with the reason -- on an invalid
   * spec, a clash, or once the instance holds 1000 series (label values
   * must come from a small fixed set). The handle is valid until shutdown() returns.
   * THREAD: any. */
  evh_metric* (*metric_register_spec)(evh_host* host, const evh_metric_spec* spec);

  /* Adds one observation to a histogram (atomic); ignored for other kinds
   * and for NaN or infinite values. THREAD: any. */
  void (*metric_observe)(evh_metric* metric, double value);

  /* ABI 1.2 and 1.3 added no host function -- append only below this line. */
} evh_host_api;

/* ------------------------------------------------------------------------ */
/* The plugin descriptor                                                     */
/* ------------------------------------------------------------------------ */

/* Flags in evh_plugin_desc.flags. */
enum {
  /* handle() may block (file or network I/O, heavy CPU): the host calls it on
   * its worker pool instead of the loop thread. */
  EVH_PLUGIN_BLOCKING = 1u << 0,
  /* ABI 1.2: on a route with `idempotency:`, the plugin keeps the event's
   * mark itself (evh_event.idempotency_key, for idempotency_ttl_ms): it does
   * nothing but answer EVH_OK when the key exists, and writes the key
   * atomically with its effects (its Lua script, say) before it answers
   * EVH_OK. The host then neither asks Redis for the key before calling it
   * nor sets it afterwards: two commands per event fewer, and no window in
   * which the effects are written but not the mark. Without the flag the
   * host does both. The host reads this flag only from a descriptor of ABI
   * 1.2 or later. */
  EVH_PLUGIN_OWN_IDEMPOTENCY = 1u << 1
};

/* What a plugin is. Returned by evh_plugin_entry().
 * OWNERSHIP: owned by the plugin, in static storage; must stay valid and
 *   unchanged until the library is unloaded.
 * The host reads only the first struct_size bytes, so a plugin built against
 * an older minor keeps working. */
typedef struct evh_plugin_desc {
  uint32_t struct_size;     /* sizeof(evh_plugin_desc) as compiled into the plugin */
  uint32_t abi_version;     /* EVH_ABI_VERSION the plugin was built against */
  const char* name;         /* the plugin's name, [a-z0-9_-]+, NUL-terminated, static */
  const char* version;      /* the plugin's own version, e.g. "1.4.2"; static; may be NULL */
  const char* description;  /* one line for `evhctl plugin inspect`; static; may be NULL */
  uint32_t flags;           /* EVH_PLUGIN_* bits */
  uint32_t max_concurrency; /* BLOCKING only: at most this many simultaneous handle() calls
                               on one instance; 0 = as many as the worker pool has threads.
                               Set 1 if your instance state is not thread-safe. */

  /* Creates one instance. Called once per instance configured in YAML (the
   * same library may be configured several times with different configs).
   * api, host: valid until shutdown() returns; keep them.
   * config_json: the instance's YAML `config:` block as JSON text (an object,
   *   "{}" when absent), NUL-terminated, borrowed for this call.
   * *out_instance: set to your instance pointer (may be NULL if stateless).
   * When the plugin has validate_config (ABI 1.3), init() is called only
   *   with a config it accepted; init() still refuses what only it can find
   *   out (a file that does not open, say).
   * Returns EVH_OK, or anything else to refuse; give the reason with
   * api->set_error first. On failure shutdown() is not called: free what
   * you allocated before returning.
   * THREAD: loop thread. Must not block for long (it runs at start-up). */
  evh_status (*init)(const evh_host_api* api, evh_host* host, evh_str config_json, void** out_instance);

  /* Handles one event for one route of this instance.
   * Returns EVH_OK (done), EVH_RETRY (transient: retried per policy),
   * EVH_REJECT (permanent: dead-lettered) -- with an optional message via
   * api->call_set_error -- or EVH_PENDING: the outcome will be given later,
   * exactly once, with api->complete(call, ...). Any other value counts as
   * EVH_RETRY and is logged.
   * event: borrowed until handle() returns (copy what a PENDING call needs).
   * call: open until the outcome is final -- handle() returned anything
   *   but EVH_PENDING; or api->complete() was accepted; or the plugin's
   *   timeout_ms passed (the host counts the call failed, as a RETRY); or
   *   the shutdown deadline passed (the host gave up on it) -- and over
   *   from then on. The handle stays safe to pass for ever: on a call that
   *   is over, api->complete() answers EVH_ERR_STATE and call_set_error()
   *   does nothing; neither reaches another call, and the host logs such a
   *   use (at most one line a minute per plugin instance).
   *   api->complete() may run (from another thread, say) before handle()
   *   returns EVH_PENDING; the host then uses the completed outcome.
   * THREAD: the loop thread, or a worker thread if EVH_PLUGIN_BLOCKING. */
  evh_status (*handle)(void* instance, const evh_event* event, evh_call* call);

  /* Destroys an instance. Called once, on the loop thread, after every
   * handle() call has finished, every pending call has been completed or
   * abandoned at the shutdown deadline, and every reply callback and post
   * has run. After it returns, `api` and `host` must not be used. May be
   * NULL when there is nothing to free. */
  void (*shutdown)(void* instance);

  /* Added in ABI 1.1 (the host reads it only from a descriptor whose
   * struct_size covers it). */

  /* Optional, may be NULL (then always EVH_HEALTH_OK): how this instance is
   * doing, for the host's readiness (/readyz) and status (/status) -- say,
   * whether the database it writes to answers. Answers EVH_HEALTH_OK,
   * EVH_HEALTH_DEGRADED or EVH_HEALTH_DOWN, and may write one line of
   * explanation into `detail` (host memory, detail_size bytes, at least 256;
   * write at most detail_size bytes, NUL-terminated; leave it empty for
   * none). Answer from state the plugin already has: it is called when an
   * operator or a probe asks, possibly every second.
   * THREAD: the loop thread; must not block. Not called before init()
   * returned EVH_OK nor after shutdown(). */
  evh_health (*health)(void* instance, char* detail, size_t detail_size);

  /* Added in ABI 1.3 (the host reads it only from a descriptor that
   * declares ABI 1.3 or later and whose struct_size covers it). */

  /* Optional, may be NULL (then the config is checked by init() alone, when
   * evhost starts): checks one instance's config without doing anything
   * else, so that `evhost --check-config` and start-up (before any init())
   * report every mistake with the YAML file and line.
   * config_json: as init() gets it -- the instance's `config:` block as JSON
   *   text (an object, "{}" when absent), NUL-terminated, borrowed for this
   *   call.
   * report: call report(ctx, pointer, message) once per problem found; the
   *   host copies both strings. See evh_config_error_fn.
   * ctx: the host's; pass it back to report unchanged, only during this
   *   call.
   * Returns EVH_OK when the config is good (and nothing was reported),
   * EVH_ERR_INVALID after reporting at least one problem, or another
   * EVH_ERR_* code when the check itself could not be made (out of memory,
   * say: the host reports that the config could not be checked).
   * Report every problem, not just the first: the operator fixes them in
   * one go. Use the same parsing code as init(), so that a config this
   * accepts is one init() accepts (the bundled plugins show how).
   * It must touch nothing outside the plugin: no Redis, no network, no file
   * written or created, no thread left running, no global state changed --
   * the host may call it when it will never call init() (a check only, a
   * reload that fails), more than once for the same config, and before
   * init() of another instance of the same library. Reading the file system
   * is fine (whether a folder exists and is writable, say). There is no
   * instance and no host table: host functions cannot be called.
   * THREAD: the thread that checks the configuration: evhost's main thread
   *   for --check-config, the loop thread at start-up (before any init())
   *   and for a reload. One call at a time, but possibly while instances of
   *   the same library handle events on other threads (a reload checks the
   *   new config while the old one runs): share no unsynchronised state
   *   with them. Must not block for long.
   * A crash in it ends evhost like any crash in plugin code, named on
   * stderr as the plugin's validate_config. */
  evh_status (*validate_config)(evh_str config_json, evh_config_error_fn report, void* ctx);

  /* Added in ABI 1.3 -- append only below this line. */
} evh_plugin_desc;

/* The one exported symbol. host_abi_version is the host's EVH_ABI_VERSION;
 * return NULL to decline (e.g. the plugin needs host functions the host
 * lacks). Called on the loop thread, possibly more than once; must return
 * the same descriptor each time. Define it in your plugin as
 *
 *   EVH_PLUGIN_EXPORT const evh_plugin_desc* evh_plugin_entry(uint32_t host_abi_version) {...}
 */
typedef const evh_plugin_desc* (*evh_plugin_entry_fn)(uint32_t host_abi_version);

/* Declared here so that a plugin's definition is checked against it. */
EVH_PLUGIN_EXPORT const evh_plugin_desc* evh_plugin_entry(uint32_t host_abi_version);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* EVH_PLUGIN_H */
