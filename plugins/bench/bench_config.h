/* bench_config: reading the bench plugin's config, {"tag": "...",
 * "result_key": "...", "work_us": N, "window_ms": N} (bench.c lists the
 * keys), with a small JSON reader of its own: the plugin is plain C with no
 * JSON library, and the config is one flat object of two strings and two
 * integers. Every
 * refusal goes to api->set_error, naming the key. */
#pragma once

#include "bench_plugin.h"

/* Formats an init() refusal into buf and hands it to api->set_error. */
void bench_set_error(const evh_host_api* api, evh_host* host, const char* fmt, ...) BENCH_PRINTF(3, 4);

/* Writes s as a JSON string, quotes included, into a new allocation. */
char* bench_json_quote(const char* s);

/* A malloc'ed copy of s, or NULL. */
char* bench_strdup(const char* s);

/* Parses {"tag": "...", "result_key": "...", "work_us": N, "window_ms": N}
 * into tag, key, work_us and window_ms (which hold the defaults on entry).
 * Returns 0, or -1 after api->set_error. */
int bench_parse_config(const evh_host_api* api, evh_host* host, evh_str config, char* tag, char* key, uint64_t* work_us,
                       uint64_t* window_ms);
