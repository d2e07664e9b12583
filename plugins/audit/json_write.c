/* json_write: the audit plugin's JSON string writer (see json_scan.h for
 * both halves): a string literal escaped for any input bytes, and a short
 * preview of a value for error messages. The reader is json_scan.c. */
#include "json_scan.h"

/* Length of the valid UTF-8 sequence at p (whose first byte is >= 0x80), or
 * 0 if it is not one (RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF). */
static size_t audit_utf8_len(const unsigned char* p, const unsigned char* end) {
  unsigned c = p[0];
  size_t n;
  size_t i;
  unsigned lo = 0x80u;
  unsigned hi = 0xBFu; /* the range of the second byte */
  if (c >= 0xC2u && c <= 0xDFu) {
    n = 2;
  } else if (c >= 0xE0u && c <= 0xEFu) {
    n = 3;
    if (c == 0xE0u) {
      lo = 0xA0u;
    } else if (c == 0xEDu) {
      hi = 0x9Fu;
    }
  } else if (c >= 0xF0u && c <= 0xF4u) {
    n = 4;
    if (c == 0xF0u) {
      lo = 0x90u;
    } else if (c == 0xF4u) {
      hi = 0x8Fu;
    }
  } else {
    return 0;
  }
  if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi) {
    return 0;
  }
  for (i = 2; i < n; ++i) {
    if (p[i] < 0x80u || p[i] > 0xBFu) {
      return 0;
    }
  }
  return n;
}

void audit_json_write_string(audit_buf* out, const char* s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char* p = (const unsigned char*)s;
  const unsigned char* end = n > 0 ? p + n : p;
  /* Most strings (ids, types, channels) have nothing to escape: one append,
   * quotes included, when the room is there. */
  while (p < end && *p >= 0x20u && *p < 0x80u && *p != '"' && *p != '\\') {
    ++p;
  }
  if (p == end && !out->failed && n + 2 < out->cap - out->len) {
    char* d = out->data + out->len;
    d[0] = '"';
    if (n > 0) {
      memcpy(d + 1, s, n);
    }
    d[n + 1] = '"';
    out->len += n + 2;
    out->data[out->len] = '\0';
    return;
  }
  /* Else the plain run just scanned, then the rest from where it stopped. */
  audit_buf_putc(out, '"');
  if (p > (const unsigned char*)s) {
    audit_buf_append(out, s, (size_t)(p - (const unsigned char*)s));
  }
  while (p < end) {
    const unsigned char* run = p;
    size_t len;
    while (p < end && *p >= 0x20u && *p < 0x80u && *p != '"' && *p != '\\') {
      ++p;
    }
    if (p > run) {
      audit_buf_append(out, (const char*)run, (size_t)(p - run));
    }
    if (p >= end) {
      break;
    }
    switch (*p) {
      case '"':
        audit_buf_append(out, "\\\"", 2);
        break;
      case '\\':
        audit_buf_append(out, "\\\\", 2);
        break;
      case '\b':
        audit_buf_append(out, "\\b", 2);
        break;
      case '\f':
        audit_buf_append(out, "\\f", 2);
        break;
      case '\n':
        audit_buf_append(out, "\\n", 2);
        break;
      case '\r':
        audit_buf_append(out, "\\r", 2);
        break;
      case '\t':
        audit_buf_append(out, "\\t", 2);
        break;
      default:
        if (*p < 0x20u) {
          char esc[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 0x0Fu]};
          audit_buf_append(out, esc, sizeof esc);
          break;
        }
        len = audit_utf8_len(p, end);
        if (len == 0) {
          audit_buf_append(out, "\xEF\xBF\xBD", 3); /* U+FFFD for a byte that is not UTF-8 */
          len = 1;
        } else {
          audit_buf_append(out, (const char*)p, len);
        }
        p += len;
        continue;
    }
    ++p;
  }
  audit_buf_putc(out, '"');
}

void audit_json_preview(audit_buf* out, evh_str value, size_t max) {
  if (value.len <= max) {
    audit_buf_append(out, value.ptr, value.len);
  } else {
    audit_buf_append(out, value.ptr, max);
    audit_buf_puts(out, "...");
  }
}
