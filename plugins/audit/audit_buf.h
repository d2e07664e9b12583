/* audit_buf: a growable byte buffer with a sticky out-of-memory flag.
 *
 * Appending never fails loudly: on an allocation failure the buffer stops
 * growing and sets `failed`, so code that builds a line with many appends
 * checks once, at the end, instead of after every call. */
#pragma once

#include <stddef.h>
#include <string.h>

typedef struct audit_buf {
  char* data; /* NUL-terminated whenever cap > 0 (handy for error text) */
  size_t len;
  size_t cap;
  int failed; /* an append ran out of memory; the content is incomplete */
} audit_buf;

void audit_buf_init(audit_buf* b);
void audit_buf_free(audit_buf* b);
/* Empties the buffer (keeping its memory) and clears `failed`. */
void audit_buf_reset(audit_buf* b);
void audit_buf_append(audit_buf* b, const char* s, size_t n);
void audit_buf_putc(audit_buf* b, char c);
/* Appends a NUL-terminated string. */
void audit_buf_puts(audit_buf* b, const char* s);

/* audit_buf_append inline when the bytes fit in the room left, the common
 * case once a buffer has grown: an audit line is some 40 appends, and the
 * call and the checks of the out-of-line one were a tenth of its cost. */
static inline void audit_buf_add(audit_buf* b, const char* s, size_t n) {
  if (!b->failed && n < b->cap - b->len) { /* cap > len whenever cap > 0: room for n bytes and the NUL */
    if (n > 0) {
      memcpy(b->data + b->len, s, n); /* s may be NULL when n is 0 */
    }
    b->len += n;
    b->data[b->len] = '\0';
  } else {
    audit_buf_append(b, s, n);
  }
}

/* Appends a string literal (its length known at compile time). */
#define AUDIT_BUF_ADD_LITERAL(b, lit) audit_buf_add((b), (lit), sizeof(lit) - 1)
