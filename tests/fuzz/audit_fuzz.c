/* Fuzzes the audit plugin's JSON scanner and redaction. The input is
 * "PATH,PATH,...\nPAYLOAD": the paths configure the redactor, the payload
 * is what an event would carry. Whatever the bytes, the copier and the
 * line formatter either refuse the payload or write valid JSON (checked with
 * the scanner itself, which is strict: RFC 8259), the string writer always
 * writes a valid JSON string, and the config parser takes the whole input as
 * a plugin `config:` block. */
#include "audit_buf.h"
#include "audit_config.h"
#include "audit_line.h"
#include "audit_redact.h"
#include "json_scan.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

static void require(int ok) {
  if (!ok) {
    abort();
  }
}

/* Whether buf[0..len) is exactly one JSON value (surrounding whitespace allowed). */
static int is_json(const char* buf, size_t len) {
  const char* end = buf + len;
  const char* p = audit_json_ws(buf, end);
  p = p == end ? NULL : audit_json_skip(p, end, AUDIT_JSON_MAX_DEPTH + 2);
  return p != NULL && audit_json_ws(p, end) == end;
}

static evh_str str_of(const char* s, size_t n) {
  evh_str out;
  out.ptr = s;
  out.len = n;
  return out;
}

/* A reference for audit_copy_redacted's output: the same copy written token
 * by token (how the copier worked before it appended runs of its input
 * whole). The two must agree byte for byte, and on what they refuse. */
static const char* ref_copy_value(const audit_redactor* r, audit_buf* scratch, audit_buf* out, const char* p,
                                  const char* end, uint64_t active, size_t seg, unsigned depth_left);

static const char* ref_copy_string(audit_buf* scratch, audit_buf* out, const char* p, const char* end) {
  audit_buf_reset(scratch);
  p = audit_json_string(p, end, scratch);
  if (p != NULL) {
    audit_json_write_string(out, scratch->data != NULL ? scratch->data : "", scratch->len);
  }
  return p;
}

static const char* ref_copy_value(const audit_redactor* r, audit_buf* scratch, audit_buf* out, const char* p,
                                  const char* end, uint64_t active, size_t seg, unsigned depth_left) {
  p = audit_json_ws(p, end);
  if (p >= end) {
    return NULL;
  }
  if (*p == '"') {
    return ref_copy_string(scratch, out, p, end);
  }
  if (*p == '{' || *p == '[') {
    const int is_object = *p == '{';
    const char close = is_object ? '}' : ']';
    int first = 1;
    if (depth_left == 0) {
      return NULL;
    }
    audit_buf_putc(out, *p);
    p = audit_json_ws(p + 1, end);
    if (p < end && *p == close) {
      audit_buf_putc(out, close);
      return p + 1;
    }
    for (;;) {
      if (!first) {
        audit_buf_putc(out, ',');
      }
      first = 0;
      if (is_object) {
        int redact = 0;
        uint64_t below = 0;
        audit_buf_reset(scratch);
        p = audit_json_string(p, end, scratch);
        if (p == NULL) {
          return NULL;
        }
        if (active != 0) {
          below = audit_redact_step(r, active, seg, scratch->data, scratch->len, &redact);
        }
        audit_json_write_string(out, scratch->data != NULL ? scratch->data : "", scratch->len);
        audit_buf_putc(out, ':');
        p = audit_json_ws(p, end);
        if (p >= end || *p != ':') {
          return NULL;
        }
        p = audit_json_ws(p + 1, end);
        if (redact) {
          p = audit_json_skip(p, end, depth_left - 1);
          audit_buf_puts(out, AUDIT_REDACTED);
        } else {
          p = ref_copy_value(r, scratch, out, p, end, below, seg + 1, depth_left - 1);
        }
      } else {
        p = ref_copy_value(r, scratch, out, p, end, active, seg, depth_left - 1);
      }
      if (p == NULL) {
        return NULL;
      }
      p = audit_json_ws(p, end);
      if (p >= end) {
        return NULL;
      }
      if (*p == close) {
        audit_buf_putc(out, close);
        return p + 1;
      }
      if (*p != ',') {
        return NULL;
      }
      p = audit_json_ws(p + 1, end);
    }
  }
  {
    const char* v = audit_json_skip(p, end, 0);
    if (v != NULL) {
      audit_buf_append(out, p, (size_t)(v - p));
    }
    return v;
  }
}

/* 0 and the copy in out, or -1. */
static int ref_copy(const audit_redactor* r, audit_buf* out, const char* text, size_t n) {
  audit_buf scratch;
  const char* end = text + n;
  const char* p;
  audit_buf_init(&scratch);
  p = n > 0 ? ref_copy_value(r, &scratch, out, text, end, audit_redact_all(r), 0, AUDIT_JSON_MAX_DEPTH) : NULL;
  audit_buf_free(&scratch);
  return p != NULL && audit_json_ws(p, end) == end ? 0 : -1;
}

static void fuzz_redaction(const char* text, size_t size) {
  const char* nl = memchr(text, '\n', size);
  const char* paths_end = nl != NULL ? nl : text;
  const char* payload = nl != NULL ? nl + 1 : text;
  const size_t payload_len = size - (size_t)(payload - text);
  audit_redactor r;
  audit_copier c;
  audit_buf out;
  audit_json_iter it;
  evh_str key;
  evh_str value;
  evh_event ev;
  char err[256];
  const char* p = text;
  int rc;

  audit_redactor_init(&r);
  while (p < paths_end) {
    const char* comma = memchr(p, ',', (size_t)(paths_end - p));
    const char* seg_end = comma != NULL ? comma : paths_end;
    (void)audit_redactor_add(&r, p, (size_t)(seg_end - p), err, sizeof err);
    p = comma != NULL ? comma + 1 : paths_end;
  }
  audit_copier_init(&c, &r);
  audit_buf_init(&out);

  rc = audit_copy_redacted(&c, &out, str_of(payload, payload_len), audit_redact_all(&r), 0);
  if (rc == 0) {
    require(!out.failed);
    require(is_json(out.data, out.len));
    require(memchr(out.data, '\n', out.len) == NULL); /* one line */
  }
  {
    audit_buf ref;
    audit_buf_init(&ref);
    require(ref_copy(&r, &ref, payload, payload_len) == rc);
    require(rc != 0 || (ref.len == out.len && memcmp(ref.data, out.data, out.len) == 0));
    audit_buf_free(&ref);
  }

  memset(&ev, 0, sizeof ev);
  ev.struct_size = sizeof ev;
  ev.event_type = str_of((size & 1) != 0 ? "USER_ACTIVITY" : "PRODUCT_CREATED", (size & 1) != 0 ? 13 : 15);
  ev.event_id = str_of(text, size < 8 ? size : 8);
  ev.correlation_id = str_of(payload, payload_len < 5 ? payload_len : 5);
  ev.timestamp = str_of("2024-01-15T10:30:00.000Z", 24);
  ev.channel = str_of("audit", 5);
  ev.payload = str_of(payload, payload_len);
  if (audit_line_format(&out, &c, &ev, err, sizeof err) == 0) {
    require(out.len > 0 && out.data[out.len - 1] == '\n');
    require(is_json(out.data, out.len - 1));
    require(memchr(out.data, '\n', out.len - 1) == NULL);
  }

  /* The copy that notes userId and action (audit_copier.capture, the line's
   * one pass over another event type's payload) finds the values a separate
   * pass over the top-level members finds: the last of each. */
  audit_buf_reset(&out);
  c.capture = 1;
  c.user = c.action = str_of(NULL, 0);
  if (audit_copy_redacted(&c, &out, str_of(payload, payload_len), audit_redact_all(&r), 0) == 0 &&
      audit_json_object(&it, str_of(payload, payload_len))) {
    evh_str user = str_of(NULL, 0);
    evh_str action = str_of(NULL, 0);
    while ((rc = audit_json_next(&it, &key, &value)) == 1) {
      if (audit_json_key_is(key, "userId", 6)) {
        user = value;
      } else if (audit_json_key_is(key, "action", 6)) {
        action = value;
      }
    }
    require(rc == 0);
    require(c.user.ptr == user.ptr && c.user.len == user.len);
    require(c.action.ptr == action.ptr && c.action.len == action.len);
  }
  c.capture = 0;

  /* The iterator on its own, as the config parser and the line use it. */
  if (audit_json_object(&it, str_of(payload, payload_len))) {
    while ((rc = audit_json_next(&it, &key, &value)) == 1) {
      int64_t n;
      audit_buf_reset(&out);
      require(audit_json_string(key.ptr, key.ptr + key.len, &out) == key.ptr + key.len);
      (void)audit_json_int64(value, &n);
      (void)audit_json_key_is(key, "metadata", 8);
    }
  }

  audit_buf_free(&out);
  audit_copier_free(&c);
  audit_redactor_free(&r);
}

static void fuzz_strings(const char* text, size_t size) {
  audit_buf out;
  audit_buf decoded;
  audit_buf_init(&out);
  audit_buf_init(&decoded);
  /* Any bytes become one valid JSON string. */
  audit_json_write_string(&out, text, size);
  require(!out.failed && out.len >= 2);
  require(audit_json_string(out.data, out.data + out.len, &decoded) == out.data + out.len);
  /* A string taken as it stands (audit_json_plain_end) is what decoding it
   * and writing it again gives, byte for byte. The input is read as a JSON
   * string from its first byte. */
  {
    const char* plain = audit_json_plain_end(text, text + size);
    if (plain != NULL) {
      audit_buf_reset(&decoded);
      audit_buf_reset(&out);
      require(audit_json_string(text, text + size, &decoded) == plain + 1);
      audit_json_write_string(&out, decoded.data, decoded.len);
      require(!out.failed && out.len == (size_t)(plain + 1 - text) && memcmp(out.data, text, out.len) == 0);
    }
  }
  audit_buf_reset(&out);
  audit_json_preview(&out, str_of(text, size), 16);
  require(out.len <= 16 + 3);
  audit_buf_free(&decoded);
  audit_buf_free(&out);
}

/* Every problem validate_config would report: a JSON Pointer ("" or "/...")
 * and a message. */
static void check_problem(void* ctx, const char* pointer, const char* message) {
  (void)ctx;
  require(pointer[0] == '\0' || pointer[0] == '/');
  require(message[0] != '\0');
}

static void fuzz_config(const char* text, size_t size) {
  audit_config cfg;
  char err[512];
  int problems;
  const int parsed = audit_config_parse(&cfg, str_of(text, size), err, sizeof err);
  if (parsed == 0) {
    audit_config_free(&cfg);
  } else {
    require(err[0] != '\0');
  }
  /* validate_config's path: the same verdict, each problem well formed. */
  problems = audit_config_read(&cfg, str_of(text, size), check_problem, NULL);
  require(problems >= 0 && (problems == 0) == (parsed == 0));
  if (problems == 0) {
    audit_config_free(&cfg);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  /* A copy of exactly `size` bytes, so that ASan sees any read past the end. */
  char* text = malloc(size > 0 ? size : 1);
  require(text != NULL);
  if (size > 0) {
    memcpy(text, data, size);
  }
  fuzz_redaction(text, size);
  fuzz_strings(text, size);
  fuzz_config(text, size);
  free(text);
  return 0;
}
