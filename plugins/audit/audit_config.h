/* audit_config: the plugin's settings, parsed from the instance's YAML
 * `config:` block (which evhost hands over as JSON text). docs/plugins/audit.md
 * describes every key. */
#pragma once

#include "audit_redact.h"

#include <evh/plugin.h>

#include <stddef.h>
#include <stdint.h>

typedef enum audit_fsync_mode {
  AUDIT_FSYNC_ALWAYS = 0,   /* after every line, before handle() answers OK */
  AUDIT_FSYNC_INTERVAL = 1, /* by a background thread, every fsync_interval_ms while lines are unsynced */
  AUDIT_FSYNC_NEVER = 2     /* never: the kernel writes the page cache back on its own schedule */
} audit_fsync_mode;

typedef struct audit_config {
  char* file; /* relative: to evhost's working directory */
  audit_redactor redact;
  audit_fsync_mode fsync;
  int64_t fsync_interval_ms;
  int64_t rotate_bytes; /* 0: never rotate */
  int64_t keep;         /* rotated files kept besides the current one */
  char* stream_key;     /* NULL: no stream; the logical key, without the environment prefix */
  int64_t stream_maxlen;
  int64_t dedup_window;    /* eventIds of the newest lines remembered against redeliveries; 0: off */
  int64_t commit_delay_us; /* the writer's wait after a batch, gathering the next one; 0: none */
} audit_config;

/* Where audit_config_read sends each problem: `pointer` is a JSON Pointer
 * into the config ("/fsync", "/stream/maxlen", "/redact/1"; "" for the
 * whole block), `message` says what is wrong without the key. Both are
 * NUL-terminated and valid during the call only. */
typedef void (*audit_config_report_fn)(void* ctx, const char* pointer, const char* message);

/* The one parser, for validate_config and init alike: fills *cfg from the
 * JSON text (defaults for what is absent), calls report(ctx, ...) for every
 * problem and returns their number: 0 with *cfg to free with
 * audit_config_free, more with nothing to free. Touches nothing outside
 * *cfg (the file is not looked at: audit_file_check does that). */
int audit_config_read(audit_config* cfg, evh_str json, audit_config_report_fn report, void* ctx);

/* audit_config_read for init(): 0, or -1 with every problem in err
 * ("config /fsync: must be ...; config /keep: ...", cut to errlen) and
 * nothing to free. */
int audit_config_parse(audit_config* cfg, evh_str json, char* err, size_t errlen);
void audit_config_free(audit_config* cfg);

const char* audit_fsync_mode_name(audit_fsync_mode mode);
