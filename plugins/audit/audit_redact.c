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

/* Copies the string token at p, re-escaped -- or as it stands when it has
 * nothing to decode or escape (audit_json_plain_end): most keys and values
 * are like that, and decoding them into the scratch buffer to escape them
 * again was about half of an audit line's cost. */
static const char* audit_copy_string(audit_copier* c, audit_buf* out, const char* p, const char* end) {
  const char* q = audit_json_plain_end(p, end);
  if (q != NULL) {
    audit_buf_append(out, p, (size_t)(q + 1 - p));
    return q + 1;
  }
  audit_buf_reset(&c->scratch);
  p = audit_json_string(p, end, &c->scratch);
  if (c->scratch.failed) {
    out->failed = 1; /* out of memory: the caller must not mistake it for bad JSON */
    return NULL;
  }
  if (p != NULL) {
    audit_json_write_string(out, c->scratch.data, c->scratch.len);
  }
  return p;
}

/* The recursive copier: one call per value. Validates as it copies, so each
 * byte of the input is looked at once (redacted values are skipped with
 * audit_json_skip, which validates them too). */
static const char* audit_copy_value(audit_copier* c, audit_buf* out, const char* p, const char* end, uint64_t active,
                                    size_t seg, unsigned depth_left) {
  const char* v;
  p = audit_json_ws(p, end);
  if (p >= end) {
    return NULL;
  }
  if (*p == '"') {
    return audit_copy_string(c, out, p, end);
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
        evh_str* noted = NULL;
        const char* value_start;
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
        }
        if (active != 0) {
          below = audit_redact_step(c->r, active, seg, key, key_len, &redact);
        }
        if (c->capture && depth_left == AUDIT_JSON_MAX_DEPTH) {
          noted = audit_capture_slot(c, key, key_len);
        }
        if (plain_end != NULL) {
          audit_buf_append(out, p, (size_t)(v - p));
        } else {
          audit_json_write_string(out, key, key_len);
        }
        audit_buf_putc(out, ':');
        p = audit_json_ws(v, end);
        if (p >= end || *p != ':') {
          return NULL;
        }
        p = audit_json_ws(p + 1, end);
        value_start = p;
        if (redact) {
          p = audit_json_skip(p, end, depth_left - 1);
          audit_buf_append(out, AUDIT_REDACTED, sizeof(AUDIT_REDACTED) - 1);
          ++c->redacted;
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
  /* A number or a literal: copied as written (already minimal JSON). */
  v = audit_json_skip(p, end, 0);
  if (v != NULL) {
    audit_buf_append(out, p, (size_t)(v - p));
  }
  return v;
}

int audit_copy_redacted(audit_copier* c, audit_buf* out, evh_str value, uint64_t active, size_t seg) {
  const char* end;
  const char* p;
  if (value.ptr == NULL || value.len == 0) {
    return -1;
  }
  end = value.ptr + value.len;
  p = audit_copy_value(c, out, value.ptr, end, active, seg, AUDIT_JSON_MAX_DEPTH);
  if (p == NULL || audit_json_ws(p, end) != end) {
    return -1;
  }
  return 0;
}
