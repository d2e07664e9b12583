/*
 * evh_e2e_probe: end-to-end latency of JollyJet's real plugins, for
 * bench/run.py --jollyjet.
 *
 * The bench plugin times an event when its handle() is called; with the real
 * plugins an event is done only once each of them has finished, and neither
 * says so to a benchmark. What each does leave in Redis, at the moment it
 * finishes, is watched here:
 *   - product: its Lua script publishes a PRODUCT_NOTIFICATION (on
 *     --notifications) once the read model is written, and evhost gets the
 *     script's reply at the same time -- so its arrival here is when the
 *     product plugin was done;
 *   - audit: with the plugin's `stream:` copy on, each line is XADDed to
 *     --audit-stream after it is in the file and fsync'd (per the mode),
 *     right before handle() answers OK -- so its arrival here (XREAD BLOCK)
 *     is when the audit plugin was done; the line carries the event's
 *     payload, and with it evh_loadgen's send time (payload.sentNs).
 * Events are matched by payload.productId ("prod-<N>", N = 1..--count, as
 * evh_loadgen numbers them). An event's end-to-end latency is the later of
 * the two arrivals minus sentNs; the per-plugin ones are reported too. Each
 * reply is stamped when its bytes were read, so a latency includes the
 * notification's trip to this process (tens of microseconds on loopback).
 *
 * Ends when every event was seen twice, on SIGTERM/SIGINT, or at --timeout;
 * then prints one JSON line (microseconds; null where nothing was seen):
 *   {"events":N,"notifications":P,"audit_lines":A,"xreads":K,"unmatched":U,
 *    "product":{"n":..,"p50":..,"p99":..,"p999":..,"max":..},"audit":{..},
 *    "end_to_end":{..}}
 * Percentiles are nearest-rank, over the events seen (an event with no audit
 * line has no send time, and is left out of all three).
 * "xreads" is the number of XREAD commands sent, so that the caller can take
 * them out of Redis's command counts. Exit 0, 1 on Redis errors, 2 on bad
 * arguments.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

#include <hiredis/hiredis.h>

#define PROG "evh_e2e_probe"

typedef struct {
  const char *host, *notifications, *audit_stream, *ready_file;
  int port;
  long long count;
  double timeout;
  uint64_t *sent, *t_product, *t_audit; /* by event number, 1..count; 0: not seen */
  long long product_seen, audit_seen, unmatched, xreads;
  char last_id[64];
} probe;

static volatile sig_atomic_t stopping;

static void on_signal(int sig) {
  (void)sig;
  stopping = 1;
}

static void usage(FILE* out) {
  fprintf(out, "Usage: " PROG
               " --count N --notifications CHANNEL --audit-stream KEY [options]\n"
               "  --host H             Redis host (default 127.0.0.1)\n"
               "  --port P             Redis port (default 6379)\n"
               "  --count N            events sent (evh_loadgen numbers them 1..N)\n"
               "  --notifications CH   the product plugin's notification channel (Redis name)\n"
               "  --audit-stream KEY   the audit plugin's stream copy (Redis name; empty at start)\n"
               "  --ready-file PATH    create this (empty) file once subscribed\n"
               "  --timeout S          give up after S seconds (default 600)\n");
}

static void parse_args(int argc, char** argv, probe* p) {
  static const struct option longopts[] = {{"host", required_argument, NULL, 'h'},
                                           {"port", required_argument, NULL, 'p'},
                                           {"count", required_argument, NULL, 'n'},
                                           {"notifications", required_argument, NULL, 'N'},
                                           {"audit-stream", required_argument, NULL, 'a'},
                                           {"ready-file", required_argument, NULL, 'r'},
                                           {"timeout", required_argument, NULL, 't'},
                                           {"help", no_argument, NULL, 'H'},
                                           {NULL, 0, NULL, 0}};
  int ch;
  p->host = "127.0.0.1";
  p->port = 6379;
  p->timeout = 600;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
    switch (ch) {
      case 'h':
        p->host = optarg;
        break;
      case 'p':
        p->port = (int)tool_parse_num("port", optarg, 1, 65535, 1);
        break;
      case 'n':
        p->count = (long long)tool_parse_num("count", optarg, 1, 1e8, 1);
        break;
      case 'N':
        p->notifications = optarg;
        break;
      case 'a':
        p->audit_stream = optarg;
        break;
      case 'r':
        p->ready_file = optarg;
        break;
      case 't':
        p->timeout = tool_parse_num("timeout", optarg, 0.1, 1e6, 0);
        break;
      case 'H':
        usage(stdout);
        exit(0);
      case ':':
        tool_bad_args("%s: missing value", argv[optind - 1]);
      default:
        tool_bad_args("unknown option '%s'", argv[optind - 1]);
    }
  }
  if (optind < argc) tool_bad_args("unexpected argument '%s'", argv[optind]);
  if (p->count == 0) tool_bad_args("--count: missing");
  if (p->notifications == NULL || p->notifications[0] == '\0') tool_bad_args("--notifications: missing");
  if (p->audit_stream == NULL || p->audit_stream[0] == '\0') tool_bad_args("--audit-stream: missing");
}

/* The number after `"key":` + prefix in text, or -1. */
static long long number_after(const char* text, size_t len, const char* key) {
  size_t klen = strlen(key);
  const char* at = memmem(text, len, key, klen);
  if (at == NULL) return -1;
  const char* d = at + klen;
  const char* end = text + len;
  long long v = 0;
  if (d >= end || *d < '0' || *d > '9') return -1;
  for (; d < end && *d >= '0' && *d <= '9'; d++) v = v * 10 + (*d - '0');
  return v;
}

/* The event number of a notification or audit line, or -1. */
static long long event_number(const probe* p, const char* text, size_t len) {
  long long i = number_after(text, len, "\"productId\":\"prod-");
  return i >= 1 && i <= p->count ? i : -1;
}

static void take_notification(probe* p, const char* text, size_t len, uint64_t now) {
  long long i = event_number(p, text, len);
  if (i < 0 || p->t_product[i] != 0) {
    p->unmatched++;
    return;
  }
  p->t_product[i] = now;
  p->product_seen++;
}

static void take_audit_line(probe* p, const char* text, size_t len, uint64_t now) {
  long long i = event_number(p, text, len);
  long long sent = number_after(text, len, "\"sentNs\":");
  if (i < 0 || sent <= 0 || p->t_audit[i] != 0) {
    p->unmatched++;
    return;
  }
  p->t_audit[i] = now;
  p->sent[i] = (uint64_t)sent;
  p->audit_seen++;
}

static void fail_redis(const char* what, redisContext* c) {
  fprintf(stderr, PROG ": %s: %s\n", what, c->errstr[0] ? c->errstr : "connection closed");
  exit(1);
}

static void send_xread(probe* p, redisContext* c) {
  if (redisAppendCommand(c, "XREAD COUNT 1000 BLOCK 100 STREAMS %s %s", p->audit_stream, p->last_id) != REDIS_OK)
    fail_redis("XREAD", c);
  int done = 0;
  while (!done)
    if (redisBufferWrite(c, &done) != REDIS_OK) fail_redis("XREAD", c);
  p->xreads++;
}

/* Reply: [[key, [[id, [field, value, ...]], ...]]], or nil after BLOCK. */
static void take_xread(probe* p, redisReply* r, uint64_t now) {
  if (r->type == REDIS_REPLY_ERROR) {
    fprintf(stderr, PROG ": XREAD: %s\n", r->str);
    exit(1);
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements == 0 || r->element[0]->type != REDIS_REPLY_ARRAY ||
      r->element[0]->elements != 2 || r->element[0]->element[1]->type != REDIS_REPLY_ARRAY)
    return;
  const redisReply* entries = r->element[0]->element[1];
  for (size_t k = 0; k < entries->elements; k++) {
    const redisReply* e = entries->element[k];
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[0]->type != REDIS_REPLY_STRING) continue;
    snprintf(p->last_id, sizeof p->last_id, "%s", e->element[0]->str);
    const redisReply* fields = e->element[1];
    for (size_t f = 1; fields->type == REDIS_REPLY_ARRAY && f < fields->elements; f += 2)
      if (fields->element[f]->type == REDIS_REPLY_STRING)
        take_audit_line(p, fields->element[f]->str, fields->element[f]->len, now);
  }
}

static void take_message(probe* p, redisReply* r, uint64_t now) {
  if (r->type == REDIS_REPLY_ERROR) {
    fprintf(stderr, PROG ": SUBSCRIBE: %s\n", r->str);
    exit(1);
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 || r->element[0]->type != REDIS_REPLY_STRING) return;
  if (strcmp(r->element[0]->str, "message") == 0 && r->element[2]->type == REDIS_REPLY_STRING) {
    take_notification(p, r->element[2]->str, r->element[2]->len, now);
  } else if (strcmp(r->element[0]->str, "subscribe") == 0 && p->ready_file != NULL) {
    FILE* f = fopen(p->ready_file, "w");
    if (f == NULL || fclose(f) != 0) {
      fprintf(stderr, PROG ": cannot create %s: %s\n", p->ready_file, strerror(errno));
      exit(1);
    }
  }
}

static int by_value(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return x < y ? -1 : x > y;
}

/* Prints "name":{"n":..,"p50":..,...} of values[0..n-1] (ns; sorted here) in us. */
static void print_stats(const char* name, uint64_t* values, size_t n, const char* sep) {
  printf("\"%s\":", name);
  if (n == 0) {
    printf("{\"n\":0,\"p50\":null,\"p99\":null,\"p999\":null,\"max\":null}%s", sep);
    return;
  }
  qsort(values, n, sizeof *values, by_value);
  const double pct[] = {50.0, 99.0, 99.9};
  printf("{\"n\":%zu", n);
  const char* names[] = {"p50", "p99", "p999"};
  for (int k = 0; k < 3; k++) {
    /* Nearest rank: the smallest value with at least pct % of the values at or below it. */
    double exact = pct[k] / 100.0 * (double)n;
    size_t rank = (size_t)exact;
    if ((double)rank < exact || rank < 1) rank++;
    printf(",\"%s\":%.3f", names[k], (double)values[rank - 1] / 1000.0);
  }
  printf(",\"max\":%.3f}%s", (double)values[n - 1] / 1000.0, sep);
}

static void report(probe* p) {
  size_t cap = (size_t)p->count;
  uint64_t* prod = calloc(cap, sizeof *prod);
  uint64_t* aud = calloc(cap, sizeof *aud);
  uint64_t* e2e = calloc(cap, sizeof *e2e);
  if (prod == NULL || aud == NULL || e2e == NULL) {
    fprintf(stderr, PROG ": out of memory\n");
    exit(1);
  }
  size_t np = 0, na = 0, ne = 0;
  for (long long i = 1; i <= p->count; i++) {
    uint64_t s = p->sent[i];
    if (s == 0) continue; /* no audit line: no send time either */
    uint64_t tp = p->t_product[i], ta = p->t_audit[i];
    aud[na++] = ta > s ? ta - s : 0;
    if (tp != 0) {
      prod[np++] = tp > s ? tp - s : 0;
      uint64_t last = tp > ta ? tp : ta;
      e2e[ne++] = last > s ? last - s : 0;
    }
  }
  printf("{\"events\":%lld,\"notifications\":%lld,\"audit_lines\":%lld,\"xreads\":%lld,\"unmatched\":%lld,", p->count,
         p->product_seen, p->audit_seen, p->xreads, p->unmatched);
  print_stats("product", prod, np, ",");
  print_stats("audit", aud, na, ",");
  print_stats("end_to_end", e2e, ne, "}\n");
  fflush(stdout);
  free(prod);
  free(aud);
  free(e2e);
}

static redisContext* connect_or_exit(const probe* p) {
  redisContext* c = redisConnect(p->host, p->port);
  if (c == NULL || c->err) {
    fprintf(stderr, PROG ": cannot connect to %s:%d: %s\n", p->host, p->port, c ? c->errstr : "out of memory");
    exit(1);
  }
  return c;
}

int main(int argc, char** argv) {
  static probe p;
  tool_init(PROG);
  parse_args(argc, argv, &p);
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; /* no SA_RESTART: poll() returns EINTR */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  size_t slots = (size_t)p.count + 1;
  p.sent = calloc(slots, sizeof *p.sent);
  p.t_product = calloc(slots, sizeof *p.t_product);
  p.t_audit = calloc(slots, sizeof *p.t_audit);
  if (p.sent == NULL || p.t_product == NULL || p.t_audit == NULL) {
    fprintf(stderr, PROG ": out of memory\n");
    return 1;
  }
  snprintf(p.last_id, sizeof p.last_id, "0-0"); /* the stream is empty (or absent) at start */

  /* Two blocking connections, read when poll() says so: one subscribed, one
   * with an XREAD BLOCK always outstanding. */
  redisContext* sub = connect_or_exit(&p);
  redisContext* xr = connect_or_exit(&p);
  if (redisAppendCommand(sub, "SUBSCRIBE %s", p.notifications) != REDIS_OK) fail_redis("SUBSCRIBE", sub);
  int done = 0;
  while (!done)
    if (redisBufferWrite(sub, &done) != REDIS_OK) fail_redis("SUBSCRIBE", sub);
  send_xread(&p, xr);

  double deadline = tool_mono_s() + p.timeout;
  while (!stopping && (p.product_seen < p.count || p.audit_seen < p.count)) {
    if (tool_mono_s() > deadline) {
      fprintf(stderr, PROG ": timed out after %g s\n", p.timeout);
      break;
    }
    struct pollfd fds[2] = {{sub->fd, POLLIN, 0}, {xr->fd, POLLIN, 0}};
    int n = poll(fds, 2, 200);
    if (n < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, PROG ": poll: %s\n", strerror(errno));
      return 1;
    }
    uint64_t now = tool_real_ns(); /* the bytes about to be read had all arrived by now */
    if (fds[0].revents != 0) {
      if (redisBufferRead(sub) != REDIS_OK) fail_redis("SUBSCRIBE", sub);
      void* r;
      while (redisGetReplyFromReader(sub, &r) == REDIS_OK && r != NULL) {
        take_message(&p, r, now);
        freeReplyObject(r);
      }
    }
    if (fds[1].revents != 0) {
      if (redisBufferRead(xr) != REDIS_OK) fail_redis("XREAD", xr);
      void* r = NULL;
      if (redisGetReplyFromReader(xr, &r) == REDIS_OK && r != NULL) {
        take_xread(&p, r, now);
        freeReplyObject(r);
        send_xread(&p, xr);
      }
    }
  }
  report(&p);
  redisFree(sub);
  redisFree(xr);
  free(p.sent);
  free(p.t_product);
  free(p.t_audit);
  return 0;
}
