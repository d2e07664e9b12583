/* json_scan: the reader half of json_scan.h (json_write.c writes). */
#include "json_scan.h"

#include <string.h>

const char* audit_json_ws(const char* p, const char* end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
    ++p;
  }
  return p;
}

static int audit_is_digit(char c) { return c >= '0' && c <= '9'; }

/* Reads four hex digits at p. */
static int audit_hex4(const char* p, const char* end, unsigned* out) {
  unsigned v = 0;
  int i;
  if (end - p < 4) {
    return 0;
  }
  for (i = 0; i < 4; ++i) {
    char c = p[i];
    unsigned d;
    if (c >= '0' && c <= '9') {
      d = (unsigned)(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = (unsigned)(c - 'a') + 10u;
    } else if (c >= 'A' && c <= 'F') {
      d = (unsigned)(c - 'A') + 10u;
    } else {
      return 0;
    }
    v = v * 16u + d;
  }
  *out = v;
  return 1;
}

static void audit_put_utf8(audit_buf* out, unsigned cp) {
  char b[4];
  size_t n;
  if (cp < 0x80u) {
    b[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800u) {
    b[0] = (char)(0xC0u | (cp >> 6));
    b[1] = (char)(0x80u | (cp & 0x3Fu));
    n = 2;
  } else if (cp < 0x10000u) {
    b[0] = (char)(0xE0u | (cp >> 12));
    b[1] = (char)(0x80u | ((cp >> 6) & 0x3Fu));
    b[2] = (char)(0x80u | (cp & 0x3Fu));
    n = 3;
  } else {
    b[0] = (char)(0xF0u | (cp >> 18));
    b[1] = (char)(0x80u | ((cp >> 12) & 0x3Fu));
    b[2] = (char)(0x80u | ((cp >> 6) & 0x3Fu));
    b[3] = (char)(0x80u | (cp & 0x3Fu));
    n = 4;
  }
  audit_buf_append(out, b, n);
}

/* See json_scan.h. */
const char* audit_json_plain_end(const char* p, const char* end) {
  if (p >= end || *p != '"') {
    return NULL;
  }
  for (++p; p < end; ++p) {
    const unsigned char u = (unsigned char)*p;
    if (u < 0x20u || u >= 0x80u || u == '\\') {
      return NULL;
    }
    if (u == '"') {
      return p;
    }
  }
  return NULL;
}

const char* audit_json_string(const char* p, const char* end, audit_buf* out) {
  if (p >= end || *p != '"') {
    return NULL;
  }
  ++p;
  while (p < end) {
    const char* run = p;
    char c;
    /* Plain bytes are copied a run at a time. */
    while (p < end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20u) {
      ++p;
    }
    if (out != NULL && p > run) {
      audit_buf_append(out, run, (size_t)(p - run));
    }
    if (p >= end) {
      return NULL; /* no closing quote */
    }
    if (*p == '"') {
      return p + 1;
    }
    if (*p != '\\') {
      return NULL; /* a raw control character: JSON requires it escaped */
    }
    if (++p >= end) {
      return NULL;
    }
    switch (*p) {
      case '"':
      case '\\':
      case '/':
        c = *p;
        break;
      case 'b':
        c = '\b';
        break;
      case 'f':
        c = '\f';
        break;
      case 'n':
        c = '\n';
        break;
      case 'r':
        c = '\r';
        break;
      case 't':
        c = '\t';
        break;
      case 'u': {
        unsigned cp;
        unsigned lo;
        if (!audit_hex4(p + 1, end, &cp)) {
          return NULL;
        }
        p += 4; /* at the last hex digit */
        if (cp >= 0xD800u && cp <= 0xDBFFu) {
          /* A high surrogate counts only with a low one right after it. */
          if (end - p >= 7 && p[1] == '\\' && p[2] == 'u' && audit_hex4(p + 3, end, &lo) && lo >= 0xDC00u &&
              lo <= 0xDFFFu) {
            cp = 0x10000u + ((cp - 0xD800u) << 10) + (lo - 0xDC00u);
            p += 6;
          } else {
            cp = 0xFFFDu;
          }
        } else if (cp >= 0xDC00u && cp <= 0xDFFFu) {
          cp = 0xFFFDu;
        }
        if (out != NULL) {
          audit_put_utf8(out, cp);
        }
        ++p;
        continue;
      }
      default:
        return NULL;
    }
    if (out != NULL) {
      audit_buf_putc(out, c);
    }
    ++p;
  }
  return NULL;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static const char* audit_json_number(const char* p, const char* end) {
  if (p < end && *p == '-') {
    ++p;
  }
  if (p >= end) {
    return NULL;
  }
  if (*p == '0') {
    ++p;
  } else if (*p >= '1' && *p <= '9') {
    while (p < end && audit_is_digit(*p)) {
      ++p;
    }
  } else {
    return NULL;
  }
  if (p < end && *p == '.') {
    ++p;
    if (p >= end || !audit_is_digit(*p)) {
      return NULL;
    }
    while (p < end && audit_is_digit(*p)) {
      ++p;
    }
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    ++p;
    if (p < end && (*p == '+' || *p == '-')) {
      ++p;
    }
    if (p >= end || !audit_is_digit(*p)) {
      return NULL;
    }
    while (p < end && audit_is_digit(*p)) {
      ++p;
    }
  }
  return p;
}

static const char* audit_json_literal(const char* p, const char* end, const char* word) {
  size_t n = strlen(word);
  if ((size_t)(end - p) < n || memcmp(p, word, n) != 0) {
    return NULL;
  }
  return p + n;
}

const char* audit_json_skip(const char* p, const char* end, unsigned depth_left) {
  if (p >= end) {
    return NULL;
  }
  switch (*p) {
    case '"':
      return audit_json_string(p, end, NULL);
    case 't':
      return audit_json_literal(p, end, "true");
    case 'f':
      return audit_json_literal(p, end, "false");
    case 'n':
      return audit_json_literal(p, end, "null");
    case '{':
    case '[': {
      const int is_object = *p == '{';
      const char close = is_object ? '}' : ']';
      if (depth_left == 0) {
        return NULL;
      }
      p = audit_json_ws(p + 1, end);
      if (p < end && *p == close) {
        return p + 1;
      }
      for (;;) {
        if (is_object) {
          p = audit_json_string(p, end, NULL);
          if (p == NULL) {
            return NULL;
          }
          p = audit_json_ws(p, end);
          if (p >= end || *p != ':') {
            return NULL;
          }
          p = audit_json_ws(p + 1, end);
        }
        p = audit_json_skip(p, end, depth_left - 1);
        if (p == NULL) {
          return NULL;
        }
        p = audit_json_ws(p, end);
        if (p >= end) {
          return NULL;
        }
        if (*p == close) {
          return p + 1;
        }
        if (*p != ',') {
          return NULL;
        }
        p = audit_json_ws(p + 1, end);
      }
    }
    default:
      return audit_json_number(p, end);
  }
}

static int audit_json_begin(audit_json_iter* it, evh_str value, char open, char close) {
  const char* p;
  const char* end;
  if (value.ptr == NULL || value.len == 0) {
    return 0;
  }
  end = value.ptr + value.len;
  p = audit_json_ws(value.ptr, end);
  if (p >= end || *p != open) {
    return 0;
  }
  it->p = p + 1;
  it->end = end;
  it->close = close;
  it->count = 0;
  return 1;
}

int audit_json_object(audit_json_iter* it, evh_str value) { return audit_json_begin(it, value, '{', '}'); }

int audit_json_array(audit_json_iter* it, evh_str value) { return audit_json_begin(it, value, '[', ']'); }

int audit_json_next(audit_json_iter* it, evh_str* key, evh_str* value) {
  const char* p;
  const char* v;
  if (it->close == '\0') {
    return 0; /* already at the end */
  }
  p = audit_json_ws(it->p, it->end);
  if (p >= it->end) {
    return -1;
  }
  if (*p == it->close && it->count == 0) {
    goto finished;
  }
  if (it->count > 0) {
    if (*p == it->close) {
      goto finished;
    }
    if (*p != ',') {
      return -1;
    }
    p = audit_json_ws(p + 1, it->end);
  }
  if (it->close == '}') {
    v = audit_json_string(p, it->end, NULL);
    if (v == NULL) {
      return -1;
    }
    if (key != NULL) {
      key->ptr = p;
      key->len = (size_t)(v - p);
    }
    p = audit_json_ws(v, it->end);
    if (p >= it->end || *p != ':') {
      return -1;
    }
    p = audit_json_ws(p + 1, it->end);
  }
  v = audit_json_skip(p, it->end, AUDIT_JSON_MAX_DEPTH - 1);
  if (v == NULL) {
    return -1;
  }
  value->ptr = p;
  value->len = (size_t)(v - p);
  it->p = v;
  ++it->count;
  return 1;

finished:
  /* Only whitespace may follow the closing bracket in the span. */
  p = audit_json_ws(p + 1, it->end);
  if (p != it->end) {
    return -1;
  }
  it->p = p;
  it->close = '\0';
  return 0;
}

int audit_json_key_is(evh_str token, const char* s, size_t n) {
  const char* raw;
  size_t raw_len;
  audit_buf decoded;
  int same;
  if (token.len < 2 || token.ptr[0] != '"') {
    return 0;
  }
  raw = token.ptr + 1;
  raw_len = token.len - 2;
  if (memchr(raw, '\\', raw_len) == NULL) {
    return raw_len == n && memcmp(raw, s, n) == 0; /* the common case: nothing escaped */
  }
  audit_buf_init(&decoded);
  same = audit_json_string(token.ptr, token.ptr + token.len, &decoded) != NULL && !decoded.failed && decoded.len == n &&
         (n == 0 || memcmp(decoded.data, s, n) == 0);
  audit_buf_free(&decoded);
  return same;
}

int audit_json_int64(evh_str value, int64_t* out) {
  const char* p;
  const char* end;
  const char* num_end;
  int negative = 0;
  uint64_t limit;
  uint64_t v = 0;
  if (value.ptr == NULL || value.len == 0) {
    return 0;
  }
  end = value.ptr + value.len;
  p = audit_json_ws(value.ptr, end);
  num_end = audit_json_number(p, end);
  if (num_end == NULL || audit_json_ws(num_end, end) != end) {
    return 0;
  }
  if (*p == '-') {
    negative = 1;
    ++p;
  }
  limit = negative ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
  for (; p < num_end; ++p) {
    unsigned d;
    if (!audit_is_digit(*p)) {
      return 0; /* a fraction or an exponent: not an integer */
    }
    d = (unsigned)(*p - '0');
    if (v > (limit - d) / 10u) {
      return 0;
    }
    v = v * 10u + d;
  }
  if (negative) {
    /* -(v - 1) - 1 stays in range for v == 2^63. */
    *out = v == 0 ? 0 : -(int64_t)(v - 1u) - 1;
  } else {
    *out = (int64_t)v;
  }
  return 1;
}
