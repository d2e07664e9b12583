/* audit_buf: see audit_buf.h. */
#include "audit_buf.h"

#include <stdlib.h>
#include <string.h>

void audit_buf_init(audit_buf* b) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->failed = 0;
}

void audit_buf_free(audit_buf* b) {
  free(b->data);
  audit_buf_init(b);
}

void audit_buf_reset(audit_buf* b) {
  b->len = 0;
  b->failed = 0;
  if (b->cap > 0) {
    b->data[0] = '\0';
  }
}

/* Makes room for n more bytes plus the terminating NUL. */
static int audit_buf_reserve(audit_buf* b, size_t n) {
  size_t need;
  size_t cap;
  char* p;
  if (b->failed) {
    return 0;
  }
  if (n > (size_t)-1 - b->len - 1) {
    b->failed = 1;
    return 0;
  }
  need = b->len + n + 1;
  if (need <= b->cap) {
    return 1;
  }
  cap = b->cap > 0 ? b->cap : 256;
  while (cap < need) {
    cap = cap > (size_t)-1 / 2 ? need : cap * 2;
  }
  p = (char*)realloc(b->data, cap);
  if (p == NULL) {
    b->failed = 1;
    return 0;
  }
  b->data = p;
  b->cap = cap;
  return 1;
}

void audit_buf_append(audit_buf* b, const char* s, size_t n) {
  if (n == 0 || !audit_buf_reserve(b, n)) {
    return;
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void audit_buf_putc(audit_buf* b, char c) { audit_buf_append(b, &c, 1); }

void audit_buf_puts(audit_buf* b, const char* s) { audit_buf_append(b, s, strlen(s)); }
