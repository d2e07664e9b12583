/* json_scan: the small JSON reader (json_scan.c) and writer (json_write.c) the audit plugin needs.
 *
 * No JSON library is assumed in C, and the plugin needs little: walk an
 * object's members, find a few keys, decode strings and integers (for the
 * config), and write strings back with correct escaping. Everything works on
 * JSON text in place (evh_str spans into it); nothing builds a tree.
 *
 * The reader validates what it reads, strictly (RFC 8259 grammar), even
 * though evhost hands plugins valid JSON: a reader that trusts its input is
 * the one that crashes on the day the input changes. Nesting is bounded by
 * AUDIT_JSON_MAX_DEPTH so that recursion cannot exhaust a worker's stack. */
#pragma once

#include "audit_buf.h"

#include <evh/plugin.h>

#include <stddef.h>
#include <stdint.h>

/* Deepest nesting accepted (evhost's own limit, limits.max_json_depth, is at
 * most 1024 and 64 by default). */
#define AUDIT_JSON_MAX_DEPTH 1024u

/* Skips JSON whitespace. */
const char* audit_json_ws(const char* p, const char* end);

/* p points at the opening quote of a string. Validates the string and, when
 * out is not NULL, appends its decoded bytes (UTF-8; a lone surrogate escape
 * such as \ud800 decodes to U+FFFD). Returns the position just past the
 * closing quote, or NULL if the string is invalid. */
const char* audit_json_string(const char* p, const char* end, audit_buf* out);

/* p points at the opening quote of a string. Returns its closing quote when
 * the string has nothing to decode and nothing to escape -- printable ASCII
 * (0x20-0x7f), no backslash -- else NULL (also for anything invalid). Such a
 * string's bytes are its value, and from quote to quote it is exactly what
 * audit_json_write_string writes for that value: a copier can take it as it
 * stands (the fuzzer checks both). */
const char* audit_json_plain_end(const char* p, const char* end);

/* p points at the first character of any JSON value. Validates it (depth_left
 * more levels of nesting allowed) and returns the position just past it, or
 * NULL if it is invalid. Scalars (numbers, true, false, null) included. */
const char* audit_json_skip(const char* p, const char* end, unsigned depth_left);

/* Iterates the members of an object or the elements of an array. */
typedef struct audit_json_iter {
  const char* p;
  const char* end;
  char close; /* '}' or ']' */
  int count;  /* items returned so far */
} audit_json_iter;

/* Starts iterating `value` (leading/trailing whitespace allowed). Returns 1
 * if it is an object (audit_json_object) / array (audit_json_array), else 0. */
int audit_json_object(audit_json_iter* it, evh_str value);
int audit_json_array(audit_json_iter* it, evh_str value);

/* The next member: *key is the key's string token, quotes included (decode
 * it with audit_json_string, compare it with audit_json_key_is); *value the
 * value's text, validated. For arrays pass key = NULL.
 * Returns 1 for an item, 0 at the end, -1 on invalid JSON. */
int audit_json_next(audit_json_iter* it, evh_str* key, evh_str* value);

/* Whether the string token `token` (quotes included) decodes to exactly the
 * n bytes at s. */
int audit_json_key_is(evh_str token, const char* s, size_t n);

/* Whether `value` is an integer literal (no fraction, no exponent) that fits
 * in int64_t; if so stores it in *out. */
int audit_json_int64(evh_str value, int64_t* out);

/* Appends the n bytes at s as a JSON string literal, quotes included:
 * '"', '\\' and control characters escaped, everything else as UTF-8. Bytes
 * that are not valid UTF-8 become U+FFFD, so the output is always valid
 * JSON whatever the input. */
void audit_json_write_string(audit_buf* out, const char* s, size_t n);

/* Appends at most `max` bytes of `value`, then "..." if it was longer, for
 * quoting a value in an error message. */
void audit_json_preview(audit_buf* out, evh_str value, size_t max);
