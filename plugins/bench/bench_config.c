/* bench_config: the bench plugin's config reader (see bench_config.h): a
 * JSON string decoder (escapes, \u with surrogate pairs, to UTF-8) and the
 * object's keys, each refusal with a message. */
#define _POSIX_C_SOURCE 200809L

#include "bench_config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bench_set_error(const evh_host_api* api, evh_host* host, const char* fmt, ...) {
  char msg[512];
  va_list args;
  int n;
  va_start(args, fmt);
  n = vsnprintf(msg, sizeof msg, fmt, args);
  va_end(args);
  if (n < 0) {
    return;
  }
  api->set_error(host, (evh_str){msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1});
}

typedef struct bench_json {
  const char* p;
  const char* end;
} bench_json;

static void bench_json_ws(bench_json* j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) {
    ++j->p;
  }
}

static int bench_hex4(const char* p, unsigned* out) {
  unsigned v = 0;
  int i;
  for (i = 0; i < 4; ++i) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') {
      v |= (unsigned)(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      v |= (unsigned)(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      v |= (unsigned)(c - 'A' + 10);
    } else {
      return 0;
    }
  }
  *out = v;
  return 1;
}

/* Reads a JSON string at j->p (on its opening quote) and decodes it into
 * out[0 .. cap-1], NUL-terminated. Returns its length, -1 when malformed,
 * -2 when longer than cap - 1 bytes. */
static long bench_json_string(bench_json* j, char* out, size_t cap) {
  size_t n = 0;
  if (j->p >= j->end || *j->p != '"') {
    return -1;
  }
  ++j->p;
  while (j->p < j->end && *j->p != '"') {
    unsigned char c = (unsigned char)*j->p++;
    unsigned cp;
    char enc[4];
    size_t k;
    size_t enc_len = 1;
    if (c < 0x20) {
      return -1;
    }
    enc[0] = (char)c;
    if (c == '\\') {
      if (j->p >= j->end) {
        return -1;
      }
      c = (unsigned char)*j->p++;
      switch (c) {
        case '"':
        case '\\':
        case '/':
          enc[0] = (char)c;
          break;
        case 'b':
          enc[0] = '\b';
          break;
        case 'f':
          enc[0] = '\f';
          break;
        case 'n':
          enc[0] = '\n';
          break;
        case 'r':
          enc[0] = '\r';
          break;
        case 't':
          enc[0] = '\t';
          break;
        case 'u':
          if (j->end - j->p < 4 || !bench_hex4(j->p, &cp)) {
            return -1;
          }
          j->p += 4;
          if (cp >= 0xD800 && cp <= 0xDBFF) { /* a surrogate pair */
            unsigned lo;
            if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' || !bench_hex4(j->p + 2, &lo) || lo < 0xDC00 ||
                lo > 0xDFFF) {
              return -1;
            }
            j->p += 6;
            cp = 0x10000u + ((cp - 0xD800u) << 10) + (lo - 0xDC00u);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return -1;
          }
          if (cp == 0) {
            return -1; /* would cut the C string short */
          }
          if (cp < 0x80) {
            enc[0] = (char)cp;
          } else if (cp < 0x800) {
            enc[0] = (char)(0xC0u | (cp >> 6));
            enc[1] = (char)(0x80u | (cp & 0x3Fu));
            enc_len = 2;
          } else if (cp < 0x10000) {
            enc[0] = (char)(0xE0u | (cp >> 12));
            enc[1] = (char)(0x80u | ((cp >> 6) & 0x3Fu));
            enc[2] = (char)(0x80u | (cp & 0x3Fu));
            enc_len = 3;
          } else {
            enc[0] = (char)(0xF0u | (cp >> 18));
            enc[1] = (char)(0x80u | ((cp >> 12) & 0x3Fu));
            enc[2] = (char)(0x80u | ((cp >> 6) & 0x3Fu));
            enc[3] = (char)(0x80u | (cp & 0x3Fu));
            enc_len = 4;
          }
          break;
        default:
          return -1;
      }
    }
    if (n + enc_len >= cap) {
      out[n] = '\0'; /* what fits, for a message */
      return -2;
    }
    for (k = 0; k < enc_len; ++k) {
      out[n++] = enc[k];
    }
  }
  if (j->p >= j->end) {
    return -1;
  }
  ++j->p; /* the closing quote */
  out[n] = '\0';
  return (long)n;
}

char* bench_json_quote(const char* s) {
  static const char hex[] = "0123456789abcdef";
  size_t len = strlen(s);
  char* out = (char*)malloc(len * 6 + 3);
  char* o = out;
  size_t i;
  if (out == NULL) {
    return NULL;
  }
  *o++ = '"';
  for (i = 0; i < len; ++i) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      *o++ = '\\';
      *o++ = (char)c;
    } else if (c < 0x20) {
      *o++ = '\\';
      *o++ = 'u';
      *o++ = '0';
      *o++ = '0';
      *o++ = hex[c >> 4];
      *o++ = hex[c & 0xFu];
    } else {
      *o++ = (char)c;
    }
  }
  *o++ = '"';
  *o = '\0';
  return out;
}

char* bench_strdup(const char* s) {
  size_t n = strlen(s) + 1;
  char* out = (char*)malloc(n);
  if (out != NULL) {
    memcpy(out, s, n);
  }
  return out;
}

/* An integer key's value at j->p: 0..max, digits only. Returns 0, or -1
 * after api->set_error naming the key. */
static int bench_json_uint(const evh_host_api* api, evh_host* host, bench_json* j, const char* name, uint64_t max,
                           uint64_t* out) {
  uint64_t v = 0;
  int digits = 0;
  while (j->p < j->end && *j->p >= '0' && *j->p <= '9' && v <= max) {
    v = v * 10 + (uint64_t)(*j->p - '0');
    ++j->p;
    ++digits;
  }
  if (digits == 0 || v > max || (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))) {
    bench_set_error(api, host, "bench: config key \"%s\" must be an integer from 0 to %llu", name,
                    (unsigned long long)max);
    return -1;
  }
  *out = v;
  return 0;
}

#define BENCH_KNOWN_KEYS "tag, result_key, work_us, window_ms"

int bench_parse_config(const evh_host_api* api, evh_host* host, evh_str config, char* tag, char* key, uint64_t* work_us,
                       uint64_t* window_ms) {
  bench_json j;
  char name[64];
  long n;
  j.p = config.ptr;
  j.end = config.ptr + config.len;
  if (config.ptr == NULL) {
    return 0; /* no config: the defaults */
  }
  bench_json_ws(&j);
  if (j.p == j.end) {
    return 0;
  }
  if (*j.p != '{') {
    bench_set_error(api, host, "bench: the config must be a JSON object (keys: " BENCH_KNOWN_KEYS ")");
    return -1;
  }
  ++j.p;
  bench_json_ws(&j);
  if (j.p < j.end && *j.p == '}') {
    ++j.p;
  } else {
    for (;;) {
      int is_tag;
      char* dest;
      size_t cap;
      bench_json_ws(&j);
      n = bench_json_string(&j, name, sizeof name);
      if (n == -2) {
        bench_set_error(api, host, "bench: unknown config key \"%.40s...\" (known keys: " BENCH_KNOWN_KEYS ")", name);
        return -1;
      }
      if (n < 0) {
        bench_set_error(api, host, "bench: the config is not valid JSON");
        return -1;
      }
      is_tag = strcmp(name, "tag") == 0;
      if (!is_tag && strcmp(name, "result_key") != 0 && strcmp(name, "work_us") != 0 &&
          strcmp(name, "window_ms") != 0) {
        bench_set_error(api, host, "bench: unknown config key \"%s\" (known keys: " BENCH_KNOWN_KEYS ")", name);
        return -1;
      }
      bench_json_ws(&j);
      if (j.p >= j.end || *j.p != ':') {
        bench_set_error(api, host, "bench: the config is not valid JSON");
        return -1;
      }
      ++j.p;
      bench_json_ws(&j);
      if (strcmp(name, "work_us") == 0) {
        if (bench_json_uint(api, host, &j, name, 1000000, work_us) != 0) {
          return -1;
        }
      } else if (strcmp(name, "window_ms") == 0) {
        if (bench_json_uint(api, host, &j, name, 60000, window_ms) != 0) {
          return -1;
        }
      } else {
        dest = is_tag ? tag : key;
        cap = is_tag ? BENCH_TAG_MAX + 1 : BENCH_RESULT_KEY_MAX + 1;
        if (j.p >= j.end || *j.p != '"') {
          bench_set_error(api, host, "bench: config key \"%s\" must be a string", name);
          return -1;
        }
        n = bench_json_string(&j, dest, cap);
        if (n == -2) {
          bench_set_error(api, host, "bench: config key \"%s\" is longer than %u bytes", name, (unsigned)(cap - 1));
          return -1;
        }
        if (n < 0) {
          bench_set_error(api, host, "bench: the config is not valid JSON (in the value of \"%s\")", name);
          return -1;
        }
        if (!is_tag && n == 0) {
          bench_set_error(api, host, "bench: config key \"result_key\" must not be empty");
          return -1;
        }
      }
      bench_json_ws(&j);
      if (j.p < j.end && *j.p == ',') {
        ++j.p;
        continue;
      }
      if (j.p < j.end && *j.p == '}') {
        ++j.p;
        break;
      }
      bench_set_error(api, host, "bench: the config is not valid JSON");
      return -1;
    }
  }
  bench_json_ws(&j);
  if (j.p != j.end) {
    bench_set_error(api, host, "bench: the config is not valid JSON (text after the object)");
    return -1;
  }
  return 0;
}
