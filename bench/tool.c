/* Small pieces shared by the benchmark tools; see tool.h. */
#define _POSIX_C_SOURCE 200809L
#include "tool.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char* g_prog = "evh_tool";

void tool_init(const char* prog) { g_prog = prog; }

void tool_bad_args(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", g_prog);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nTry '%s --help'.\n", g_prog);
  exit(2);
}

double tool_parse_num(const char* opt, const char* s, double min, double max, int whole) {
  char* end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if (s[0] == '\0' || (s[0] != '.' && (s[0] < '0' || s[0] > '9')) || strpbrk(s, "xX") || *end != '\0' || errno != 0 ||
      !(v >= min && v <= max) || (whole && v != (double)(long long)v))
    tool_bad_args("--%s: '%s' is not %s in [%g, %g]", opt, s, whole ? "an integer" : "a number", min, max);
  return v;
}

double tool_mono_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

uint64_t tool_real_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}
