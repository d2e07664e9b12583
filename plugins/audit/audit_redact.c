/* audit_redact: see audit_redact.h. */
#include "audit_redact.h"

#include "json_scan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void audit_redactor_init(audit_redactor* r) { memset(r, 0, sizeof(*r)); }

void audit_redactor_free(audit_redactor* r) {
  size_t i;
  for (i = 0; i < r->count; ++i) {
    free(r->paths[i].text);
    free(r->paths[i].segs);
    free(r->paths[i].storage);
  }
  audit_redactor_init(r);
}

int audit_redactor_add(audit_redactor* r, const char* s, size_t n, char* err, size_t errlen) {
  audit_redact_path* p;
  size_t i;
  size_t nsegs = 1;
  size_t start = 0;
  size_t k = 0;
  if (r->count >= AUDIT_REDACT_MAX) {
    snprintf(err, errlen, "at most %u paths", AUDIT_REDACT_MAX);
    return -1;
  }
  for (i = 0; i < n; ++i) {
    if (s[i] == '.') {
      ++nsegs;
    }
  }
  for (i = 0; i <= n; ++i) {
    if (i == n || s[i] == '.') {
      if (i == start) {
        snprintf(err, errlen, "\"%.*s\" has an empty segment (paths are keys joined by dots, like metadata.email)",
                 (int)n, s);
        return -1;
      }
      start = i + 1;
    }
  }
  p = &r->paths[r->count];
  p->text = (char*)malloc(n + 1);
  p->storage = (char*)malloc(n + 1);
  p->segs = (evh_str*)calloc(nsegs, sizeof(evh_str));
  if (p->text == NULL || p->storage == NULL || p->segs == NULL) {
    free(p->text);
    free(p->storage);
    free(p->segs);
    memset(p, 0, sizeof(*p));
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  memcpy(p->text, s, n);
  p->text[n] = '\0';
  memcpy(p->storage, s, n);
  p->storage[n] = '\0';
  start = 0;
  for (i = 0; i <= n; ++i) {
    if (i == n || s[i] == '.') {
      p->segs[k].ptr = p->storage + start;
      p->segs[k].len = i - start;
      ++k;
      start = i + 1;
    }
  }
  p->nsegs = nsegs;
  ++r->count;
  return 0;
}

uint64_t audit_redact_all(const audit_redactor* r) {
  return r->count >= 64u ? ~(uint64_t)0 : (((uint64_t)1 << r->count) - 1u);
}

uint64_t audit_redact_step(const audit_redactor* r, uint64_t active, size_t seg, const char* key, size_t key_len,
                           int* redact) {
  uint64_t next = 0;
  size_t i;
  *redact = 0;
  for (i = 0; i < r->count && active != 0; ++i) {
    const uint64_t bit = (uint64_t)1 << i;
    const audit_redact_path* p = &r->paths[i];
    const evh_str* s;
    if ((active & bit) == 0 || seg >= p->nsegs) {
      continue;
    }
    s = &p->segs[seg];
    if ((s->len == 1 && s->ptr[0] == '*') || (s->len == key_len && memcmp(s->ptr, key, key_len) == 0)) {
      if (seg + 1 == p->nsegs) {
        *redact = 1;
      } else {
        next |= bit;
      }
    }
  }
  return next;
}

void audit_copier_init(audit_copier* c, const audit_redactor* r) {
  c->r = r;
  audit_buf_init(&c->scratch);
  c->redacted = 0;
  c->capture = 0;
  c->user.ptr = NULL;
  c->user.len = 0;
  c->action = c->user;
  audit_buf_init(&c->payload);
  c->span = NULL;
}

void audit_copier_free(audit_copier* c) {
  audit_buf_free(&c->scratch);
  audit_buf_free(&c->payload);
}

/* Where a top-level member's value is to be noted (audit_copier.capture),
 * or NULL. */
static evh_str* audit_capture_slot(audit_copier* c, const char* key, size_t key_len) {
  if (key_len != 6) {
    return NULL;
  }
  if (memcmp(key, "userId", 6) == 0) {
    return &c->user;
  }
  return memcmp(key, "action", 6) == 0 ? &c->action : NULL;
}

/* The copier's output is its input with a few changes: whitespace between
 * tokens dropped, strings that need it decoded and escaped again, redacted
 * values replaced. What it copies as it stands is not appended token by
 * token: c->span is where the run of input not yet appended starts, and the
 * run is appended whole when a change comes (audit_copy_cut) and at the end
 * -- a compact payload of plain strings is one append. Appending token by
 * token (a call per key, value, colon and comma) was about half of the
 * copy's cost (callgrind, the JollyJet durable drain, 2026-12-08). */

/* Appends the pending run, up to `at`, and starts the next one at `resume`:
 * the input between the two is left out (the caller appends what replaces
 * it). */
static void audit_copy_cut(audit_copier* c, audit_buf* out, const char* at, const char* resume) {
  if (at > c->span) {
    audit_buf_add(out, c->span, (size_t)(at - c->span));
  }
  c->span = resume;
}

static int audit_is_ws(char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r'; }

/* Skips whitespace, leaving it out of the output. */
static const char* audit_copy_ws_run(audit_copier* c, audit_buf* out, const char* p, const char* end) {
  const char* q = audit_json_ws(p, end);
  audit_copy_cut(c, out, p, q);
  return q;
}

/* The same, inline where there is none (compact JSON: between every two
 * tokens). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline const char*
audit_copy_ws(audit_copier* c, audit_buf* out, const char* p, const char* end) {
  return p < end && audit_is_ws(*p) ? audit_copy_ws_run(c, out, p, end) : p;
}

/* Copies the string token at p: as it stands when it has nothing to decode
 * or escape (audit_json_plain_end) -- most keys and values are like that --
 * else decoded into the scratch buffer and escaped again. */
static const char* audit_copy_string(audit_copier* c, audit_buf* out, const char* p, const char* end) {
  const char* q = audit_json_plain_end(p, end);
  if (q != NULL) {
    return q + 1;
  }
  audit_buf_reset(&c->scratch);
  q = audit_json_string(p, end, &c->scratch);
  if (c->scratch.failed) {
    out->failed = 1; /* out of memory: the caller must not mistake it for bad JSON */
    return NULL;
  }
  if (q != NULL) {
    audit_copy_cut(c, out, p, q);
    audit_json_write_string(out, c->scratch.data, c->scratch.len);
  }
  return q;
}

/* The recursive copier: one call per value. Validates as it copies, so each
 * byte of the input is looked at once (redacted values are skipped with
 * audit_json_skip, which validates them too). */
static const char* audit_copy_value(audit_copier* c, audit_buf* out, const char* p, const char* end, uint64_t active,
                                    size_t seg, unsigned depth_left) {
  p = audit_copy_ws(c, out, p, end);
  if (p >= end) {
    return NULL;
  }
  if (*p == '"') {
    return audit_copy_string(c, out, p, end);
  }
  if (*p == '{' || *p == '[') {
    const int is_object = *p == '{';
    const char close = is_object ? '}' : ']';
    if (depth_left == 0) {
      return NULL;
    }
    p = audit_copy_ws(c, out, p + 1, end);
    if (p < end && *p == close) {
      return p + 1;
    }
    for (;;) {
      if (is_object) {
        int redact = 0;
        uint64_t below = 0;
        evh_str* noted = NULL;
        const char* value_start;
        const char* v;
        const char* plain_end = audit_json_plain_end(p, end);
        const char* key = p + 1;
        size_t key_len = plain_end != NULL ? (size_t)(plain_end - key) : 0;
        if (plain_end != NULL) {
          v = plain_end + 1;
        } else {
          audit_buf_reset(&c->scratch);
          v = audit_json_string(p, end, &c->scratch);
          if (c->scratch.failed) {
            out->failed = 1;
            return NULL;
          }
          if (v == NULL) {
            return NULL;
          }
          key = c->scratch.data;
          key_len = c->scratch.len;
          audit_copy_cut(c, out, p, v);
          audit_json_write_string(out, key, key_len);
        }
        if (active != 0) {
          below = audit_redact_step(c->r, active, seg, key, key_len, &redact);
        }
        if (c->capture && depth_left == AUDIT_JSON_MAX_DEPTH) {
          noted = audit_capture_slot(c, key, key_len);
        }
        p = audit_copy_ws(c, out, v, end);
        if (p >= end || *p != ':') {
          return NULL;
        }
        p = audit_copy_ws(c, out, p + 1, end);
        value_start = p;
        if (redact) {
          const char* after = audit_json_skip(p, end, depth_left - 1);
          if (after != NULL) {
            audit_copy_cut(c, out, p, after);
            AUDIT_BUF_ADD_LITERAL(out, AUDIT_REDACTED);
            ++c->redacted;
          }
          p = after;
        } else {
          p = audit_copy_value(c, out, p, end, below, seg + 1, depth_left - 1);
        }
        if (noted != NULL && p != NULL) {
          noted->ptr = value_start;
          noted->len = (size_t)(p - value_start);
        }
      } else {
        /* Arrays are transparent to paths: elements match where the array does. */
        p = audit_copy_value(c, out, p, end, active, seg, depth_left - 1);
      }
      if (p == NULL) {
        return NULL;
      }
      p = audit_copy_ws(c, out, p, end);
      if (p >= end) {
        return NULL;
      }
      if (*p == close) {
        return p + 1;
      }
      if (*p != ',') {
        return NULL;
      }
      p = audit_copy_ws(c, out, p + 1, end);
    }
  }
  /* A number or a literal: copied as written (already minimal JSON). */
  return audit_json_skip(p, end, 0);
}

int audit_copy_redacted(audit_copier* c, audit_buf* out, evh_str value, uint64_t active, size_t seg) {
  const char* end;
  const char* p;
  if (value.ptr == NULL || value.len == 0) {
    return -1;
  }
  end = value.ptr + value.len;
  c->span = value.ptr;
  p = audit_copy_value(c, out, value.ptr, end, active, seg, AUDIT_JSON_MAX_DEPTH);
  if (p == NULL || audit_json_ws(p, end) != end) {
    return -1;
  }
  audit_copy_cut(c, out, p, p); /* the last run; trailing whitespace left out */
  return 0;
}
