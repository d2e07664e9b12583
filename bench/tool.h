/* Small pieces shared by the benchmark tools (evh_loadgen, evh_ref_sub):
 * argument errors, number parsing, clocks. */
#pragma once

#include <stdint.h>

/* The program name that prefixes messages; call first in main(). */
void tool_init(const char* prog);

/* Prints "<prog>: <message>" and a hint to --help on stderr; exits 2. */
void tool_bad_args(const char* fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* A plain decimal number (an integer if whole) in [min, max] given to
 * --opt, or tool_bad_args naming the option. */
double tool_parse_num(const char* opt, const char* s, double min, double max, int whole);

double tool_mono_s(void);    /* CLOCK_MONOTONIC, seconds */
uint64_t tool_real_ns(void); /* CLOCK_REALTIME, ns since the epoch */
