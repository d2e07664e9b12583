/*
 * evh_ref_sub: the reference subscriber for evhost benchmarks.
 *
 * The plain hiredis (async) + libuv limit that evhost is measured against: it
 * receives the events evh_loadgen sends and only counts them. Either SUBSCRIBE
 * to a channel, or read a stream through a consumer group (XREADGROUP, with
 * one XACK per batch). The BENCH_END sentinel ends the run; one JSON summary
 * line goes to stdout. Exit 0 on success, 1 on connection/Redis errors, 2 on
 * bad arguments, 3 on --timeout.
 *
 * --latency: for every counted event also take CLOCK_REALTIME, find the last
 * `"sentNs":<digits>` in its text (evh_loadgen's send time, in ns; a backwards
 * scan, since it sits near the end) and record now - sentNs (negative: 0) in
 * the bench plugin's histogram (plugins/bench/histogram.c). Events without a
 * parsable sentNs are counted under "no_timestamp". The summary line then ends
 * with the fields the bench plugin reports, formatted the same way:
 *   "no_timestamp":N,"latency_us":{"min":X,"p50":X,"p90":X,"p99":X,
 *   "p999":X,"max":X,"mean":X}
 * (X in microseconds with 3 decimals). Without --latency only counting is
 * done and the line has neither field.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "tool.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include "histogram.h"

#define PROG "evh_ref_sub"

typedef struct {
  /* options */
  const char *host, *target, *group, *ready_file;
  int port;
  int stream; /* 0: SUBSCRIBE, 1: XREADGROUP */
  long long count;
  double timeout;
  int latency; /* --latency: record sentNs latencies */
  /* run */
  uv_loop_t* loop;
  uv_timer_t timer;      /* --timeout */
  uv_timer_t conn_timer; /* connect watchdog, see on_connect_check */
  redisAsyncContext* ac;
  int ac_alive; /* 0 once hiredis has freed the context */
  int done;
  int rc;
  long long received;
  int sentinel_seen;
  long long sent; /* from the sentinel; -1 = absent */
  double t_first, t_end;
  long long no_timestamp; /* --latency: counted events without a sentNs */
  bench_hist hist;        /* --latency: now - sentNs, ns */
  char count_str[24];
  const char** ack_argv; /* "XACK" target group id..., room for --count ids */
  size_t* lens;          /* argument lengths for command(), as many */
} state;

static void usage(FILE* out) {
  fprintf(out, "Usage: " PROG
               " --target NAME [options]\n"
               "  --host H          Redis host (default 127.0.0.1)\n"
               "  --port P          Redis port (default 6379)\n"
               "  --mode M          subscribe (channel, default) or stream (consumer group)\n"
               "  --target NAME     channel or stream key (required)\n"
               "  --group G         consumer group in stream mode (default ref)\n"
               "  --count C         XREADGROUP COUNT (default 1000)\n"
               "  --ready-file PATH create this (empty) file once ready to receive\n"
               "  --timeout S       give up after S seconds, exit 3 (default 120)\n"
               "  --latency         also record each event's latency (now - its \"sentNs\",\n"
               "                    CLOCK_REALTIME) and add \"no_timestamp\" and \"latency_us\"\n"
               "                    (min/p50/p90/p99/p999/max/mean) to the summary line\n"
               "  --help            this text\n");
}

static const char* nonempty(const char* opt, const char* s) {
  if (s[0] == '\0') tool_bad_args("--%s: empty value", opt);
  return s;
}

static void parse_args(int argc, char** argv, state* o) {
  static const struct option longopts[] = {{"host", required_argument, NULL, 'h'},
                                           {"port", required_argument, NULL, 'p'},
                                           {"mode", required_argument, NULL, 'm'},
                                           {"target", required_argument, NULL, 't'},
                                           {"group", required_argument, NULL, 'g'},
                                           {"count", required_argument, NULL, 'n'},
                                           {"ready-file", required_argument, NULL, 'f'},
                                           {"timeout", required_argument, NULL, 'T'},
                                           {"latency", no_argument, NULL, 'L'},
                                           {"help", no_argument, NULL, 'H'},
                                           {NULL, 0, NULL, 0}};
  int ch;
  o->host = "127.0.0.1";
  o->port = 6379;
  o->group = "ref";
  o->count = 1000;
  o->timeout = 120;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
    switch (ch) {
      case 'h':
        o->host = nonempty("host", optarg);
        break;
      case 'p':
        o->port = (int)tool_parse_num("port", optarg, 1, 65535, 1);
        break;
      case 'm':
        o->stream = strcmp(optarg, "stream") == 0;
        if (!o->stream && strcmp(optarg, "subscribe") != 0)
          tool_bad_args("--mode: '%s' is not subscribe or stream", optarg);
        break;
      case 't':
        o->target = nonempty("target", optarg);
        break;
      case 'g':
        o->group = nonempty("group", optarg);
        break;
      case 'n':
        o->count = (long long)tool_parse_num("count", optarg, 1, 1e6, 1);
        break;
      case 'f':
        o->ready_file = nonempty("ready-file", optarg);
        break;
      case 'T':
        o->timeout = tool_parse_num("timeout", optarg, 0.001, 1e7, 0);
        break;
      case 'L':
        o->latency = 1;
        break;
      case 'H':
        usage(stdout);
        exit(0);
      case ':': {
        const struct option* lo = longopts;
        while (lo->name != NULL && lo->val != optopt) lo++;
        tool_bad_args("--%s: missing value", lo->name != NULL ? lo->name : "?");
      }
      default:
        tool_bad_args("unknown option '%s'", argv[optind - 1]);
    }
  }
  if (optind < argc) tool_bad_args("unexpected argument '%s'", argv[optind]);
  if (o->target == NULL) tool_bad_args("--target: missing (the channel or stream key is required)");
}

/* The number after the last `"sentNs":` in text (the key's opening quote not
 * escaped; blanks allowed around the colon): 1 with *out set, or 0 when there
 * is none or it is not a plain non-negative integer below 2^63. Scans from
 * the end, where evh_loadgen puts it. */
static int find_sent_ns(const char* text, size_t len, uint64_t* out) {
  static const char key[] = "\"sentNs\"";
  const size_t klen = sizeof key - 1;
  if (len < klen + 2) /* the key, a colon and a digit at least */
    return 0;
  const char *end = text + len, *p = end - klen - 2;
  while (!(memcmp(p, key, klen) == 0 && (p == text || p[-1] != '\\'))) {
    if (p == text) return 0;
    p--;
  }
  p += klen;
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
  if (p == end || *p++ != ':') return 0;
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
  const char* digits = p;
  uint64_t v = 0;
  for (; p < end && *p >= '0' && *p <= '9'; p++) {
    uint64_t d = (uint64_t)(*p - '0');
    if (v > (UINT64_C(0x7fffffffffffffff) - d) / 10) return 0;
    v = v * 10 + d;
  }
  if (p == digits || (p < end && (*p == '.' || *p == 'e' || *p == 'E'))) return 0;
  *out = v;
  return 1;
}

/* Appends `sep"name":X` to the line, X = ns as microseconds with 3 decimals. */
static void put_us(char** pos, char* end, const char* sep, const char* name, uint64_t ns) {
  int n = snprintf(*pos, (size_t)(end - *pos), "%s\"%s\":%llu.%03u", sep, name, (unsigned long long)(ns / 1000u),
                   (unsigned)(ns % 1000u));
  if (n > 0) *pos += (size_t)n < (size_t)(end - *pos) ? (size_t)n : (size_t)(end - *pos) - 1;
}

/* The --latency fields for the summary line (empty without --latency). */
static void latency_fields(const state* st, char* buf, size_t size) {
  char *pos = buf, *end = buf + size;
  const bench_hist* h = &st->hist;
  buf[0] = '\0';
  if (!st->latency) return;
  int n = snprintf(pos, size, ",\"no_timestamp\":%lld,\"latency_us\":{", st->no_timestamp);
  if (n < 0 || (size_t)n >= size) return;
  pos += n;
  double mean = bench_hist_mean(h) + 0.5;
  put_us(&pos, end, "", "min", bench_hist_min(h));
  put_us(&pos, end, ",", "p50", bench_hist_value_at_percentile(h, 50.0));
  put_us(&pos, end, ",", "p90", bench_hist_value_at_percentile(h, 90.0));
  put_us(&pos, end, ",", "p99", bench_hist_value_at_percentile(h, 99.0));
  put_us(&pos, end, ",", "p999", bench_hist_value_at_percentile(h, 99.9));
  put_us(&pos, end, ",", "max", bench_hist_max(h));
  put_us(&pos, end, ",", "mean", mean >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)mean);
  snprintf(pos, (size_t)(end - pos), "}");
}

/* Prints the summary line (success or timeout), records rc, stops the loop. */
static void finish(state* st, int rc) {
  if (st->done) return;
  st->done = 1;
  st->rc = rc;
  if (rc == 0 || rc == 3) {
    double seconds = st->received > 0 ? (rc == 0 ? st->t_end : tool_mono_s()) - st->t_first : 0.0;
    char sent[24] = "null";
    char latency[384]; /* the fields need at most ~260 */
    if (st->sent >= 0) snprintf(sent, sizeof sent, "%lld", st->sent);
    latency_fields(st, latency, sizeof latency);
    printf(
        "{\"subscriber\":\"reference\",\"mode\":\"%s\",\"received\":%lld,\"sent\":%s,"
        "\"seconds\":%.6f,\"events_per_s\":%.1f%s%s}\n",
        st->stream ? "stream" : "subscribe", st->received, sent, seconds,
        seconds > 0 ? (double)st->received / seconds : 0.0, latency, rc == 3 ? ",\"timed_out\":true" : "");
    fflush(stdout);
  }
  uv_stop(st->loop);
}

static void fail(state* st, const char* what, const char* msg) {
  if (st->done) return;
  fprintf(stderr, PROG ": redis %s:%d: %s: %s\n", st->host, st->port, what, msg);
  finish(st, 1);
}

static void make_ready_file(state* st) {
  if (st->ready_file == NULL) return;
  FILE* f = fopen(st->ready_file, "w");
  if (f == NULL || fclose(f) != 0) {
    fprintf(stderr, PROG ": cannot create ready file %s: %s\n", st->ready_file, strerror(errno));
    finish(st, 1);
  }
}

/* One event text (NUL-terminated, as hiredis makes them): the sentinel
 * (returns 1, keeps its arrival time and "sent" figure) or an event to count
 * (and, with --latency, to time). */
static int take_event(state* st, const char* text, size_t len) {
  uint64_t now = 0;
  if (st->latency) now = tool_real_ns(); /* first: the sentinel scan below is not latency */
  if (memmem(text, len, "BENCH_END", 9) != NULL) {
    const char* p = memmem(text, len, "\"sent\":", 7);
    st->t_end = tool_mono_s();
    st->sentinel_seen = 1;
    st->sent = p != NULL && p[7] >= '0' && p[7] <= '9' ? strtoll(p + 7, NULL, 10) : -1;
    return 1;
  }
  if (st->received++ == 0) st->t_first = tool_mono_s();
  if (st->latency) {
    uint64_t sent_ns;
    if (find_sent_ns(text, len, &sent_ns))
      bench_hist_record(&st->hist, now > sent_ns ? now - sent_ns : 0);
    else
      st->no_timestamp++;
  }
  return 0;
}

/* Queues a command (arguments are NUL-terminated; hiredis copies them). */
static void command(state* st, redisCallbackFn* fn, size_t argc, const char** argv) {
  for (size_t k = 0; k < argc; k++) st->lens[k] = strlen(argv[k]);
  if (redisAsyncCommandArgv(st->ac, fn, st, (int)argc, argv, st->lens) != REDIS_OK)
    fail(st, argv[0], "cannot queue the command");
}

/* The reply to act on, or NULL: none (context freed), already done, or an
 * error (reported, ends the run) unless it starts with the `ok_error` prefix. */
static redisReply* checked(state* st, void* r, const char* cmd, const char* ok_error) {
  redisReply* reply = r;
  if (reply == NULL || st->done) return NULL;
  if (reply->type == REDIS_REPLY_ERROR && (ok_error == NULL || strncmp(reply->str, ok_error, strlen(ok_error)) != 0)) {
    fail(st, cmd, reply->str);
    return NULL;
  }
  return reply;
}

/* ---- subscribe mode ---------------------------------------------------- */

static void on_message(redisAsyncContext* ac, void* r, void* priv) {
  state* st = priv;
  redisReply* reply = checked(st, r, "SUBSCRIBE", NULL);
  (void)ac;
  if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
      reply->element[0]->type != REDIS_REPLY_STRING)
    return;
  const char* kind = reply->element[0]->str;
  redisReply* body = reply->element[2];
  if (strcmp(kind, "message") == 0 && body->type == REDIS_REPLY_STRING) {
    if (take_event(st, body->str, body->len)) finish(st, 0);
  } else if (strcmp(kind, "subscribe") == 0) {
    make_ready_file(st);
  }
}

/* ---- stream mode ------------------------------------------------------- */

static void on_read(redisAsyncContext* ac, void* r, void* priv);

static void issue_read(state* st) {
  const char* argv[] = {"XREADGROUP", "GROUP", st->group, "ref-consumer", "COUNT", st->count_str,
                        "BLOCK",      "1000",  "STREAMS", st->target,     ">"};
  command(st, on_read, 11, argv);
}

static void on_ack(redisAsyncContext* ac, void* r, void* priv) {
  state* st = priv;
  (void)ac;
  if (checked(st, r, "XACK", NULL) != NULL && st->sentinel_seen)
    finish(st, 0); /* the sentinel's batch is acknowledged: done */
}

/* Text of the "event" field of one stream entry's field list, or NULL. */
static const redisReply* event_field(const redisReply* fields) {
  if (fields == NULL || fields->type != REDIS_REPLY_ARRAY) return NULL;
  for (size_t k = 0; k + 1 < fields->elements; k += 2) {
    const redisReply* name = fields->element[k];
    const redisReply* value = fields->element[k + 1];
    if (name->type == REDIS_REPLY_STRING && strcmp(name->str, "event") == 0)
      return value->type == REDIS_REPLY_STRING ? value : NULL;
  }
  return NULL;
}

static void on_read(redisAsyncContext* ac, void* r, void* priv) {
  state* st = priv;
  redisReply* reply = checked(st, r, "XREADGROUP", NULL);
  (void)ac;
  if (reply == NULL) return;
  int sentinel = 0;
  size_t nids = 0;
  /* Reply: [[key, [[id, [field, value, ...]], ...]]], or nil after BLOCK. */
  if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 && reply->element[0]->type == REDIS_REPLY_ARRAY &&
      reply->element[0]->elements == 2 && reply->element[0]->element[1]->type == REDIS_REPLY_ARRAY) {
    const redisReply* entries = reply->element[0]->element[1];
    for (size_t k = 0; k < entries->elements && nids < (size_t)st->count; k++) {
      const redisReply* e = entries->element[k];
      if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[0]->type != REDIS_REPLY_STRING) continue;
      st->ack_argv[3 + nids++] = e->element[0]->str;
      const redisReply* ev = event_field(e->element[1]);
      if (!sentinel && ev != NULL) sentinel = take_event(st, ev->str, ev->len);
    }
  }
  if (nids > 0) command(st, on_ack, nids + 3, st->ack_argv); /* XACK target group id... */
  if (!sentinel)
    issue_read(st);
  else if (nids == 0)
    finish(st, 0);
}

static void on_group(redisAsyncContext* ac, void* r, void* priv) {
  state* st = priv;
  (void)ac;
  if (checked(st, r, "XGROUP CREATE", "BUSYGROUP") == NULL) return;
  issue_read(st);
  make_ready_file(st);
}

/* ---- connection and main ------------------------------------------------ */

static void on_connect(const redisAsyncContext* ac, int status) {
  state* st = ac->data;
  if (status != REDIS_OK) {
    st->ac_alive = 0; /* hiredis frees the context after this call */
    fail(st, "cannot connect", ac->c.errstr);
  }
}

static void on_disconnect(const redisAsyncContext* ac, int status) {
  state* st = ac->data;
  st->ac_alive = 0;
  fail(st, "connection lost", status == REDIS_OK ? "disconnected" : ac->c.errstr);
}

/* The hiredis 0.14 libuv adapter drops libuv's error status (a refused connect
 * shows up as POLLERR, and libuv then stops the poll handle), so hiredis never
 * learns that connect(2) failed. Until connected, poll the socket's error. */
static void on_connect_check(uv_timer_t* t) {
  state* st = t->data;
  if (st->done || !st->ac_alive || (st->ac->c.flags & REDIS_CONNECTED)) {
    uv_timer_stop(t);
    return;
  }
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(st->ac->c.fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
    uv_timer_stop(t);
    fail(st, "cannot connect", strerror(err));
    /* Reading SO_ERROR cleared it: free the context now (this also closes
     * its poll handle) so hiredis cannot mistake the socket for connected. */
    st->ac_alive = 0;
    redisAsyncFree(st->ac);
  }
}

static void on_timeout(uv_timer_t* t) {
  state* st = t->data;
  fprintf(stderr, PROG ": timed out after %g s\n", st->timeout);
  finish(st, 3);
}

int main(int argc, char** argv) {
  static state st;
  tool_init(PROG);
  parse_args(argc, argv, &st);
  signal(SIGPIPE, SIG_IGN); /* a dead peer is an error reply, not a kill */
  st.sent = -1;
  snprintf(st.count_str, sizeof st.count_str, "%lld", st.count);
  size_t room = (size_t)st.count + 11; /* >= XREADGROUP's 11 arguments */
  st.ack_argv = calloc(room, sizeof *st.ack_argv);
  st.lens = calloc(room, sizeof *st.lens);
  if (st.ack_argv == NULL || st.lens == NULL) {
    fprintf(stderr, PROG ": out of memory\n");
    return 1;
  }
  if (st.latency && bench_hist_init(&st.hist) != 0) {
    fprintf(stderr, PROG ": out of memory\n");
    return 1;
  }
  st.ack_argv[0] = "XACK";
  st.ack_argv[1] = st.target;
  st.ack_argv[2] = st.group;
  st.loop = uv_default_loop();

  st.ac = redisAsyncConnect(st.host, st.port);
  if (st.ac == NULL || st.ac->err) {
    fprintf(stderr, PROG ": redis %s:%d: cannot connect: %s\n", st.host, st.port,
            st.ac ? st.ac->c.errstr : "out of memory");
    if (st.ac) redisAsyncFree(st.ac);
    return 1;
  }
  st.ac_alive = 1;
  st.ac->data = &st;
  if (redisLibuvAttach(st.ac, st.loop) != REDIS_OK) {
    fprintf(stderr, PROG ": cannot attach hiredis to libuv\n");
    return 1;
  }
  redisAsyncSetConnectCallback(st.ac, on_connect);
  redisAsyncSetDisconnectCallback(st.ac, on_disconnect);

  uv_timer_init(st.loop, &st.timer);
  st.timer.data = &st;
  uv_timer_start(&st.timer, on_timeout, (uint64_t)(st.timeout * 1000.0), 0);
  uv_timer_init(st.loop, &st.conn_timer);
  st.conn_timer.data = &st;
  uv_timer_start(&st.conn_timer, on_connect_check, 10, 10);

  /* Queued now, written once the connection is up (this also starts it). */
  if (!st.stream) {
    const char* a[] = {"SUBSCRIBE", st.target};
    command(&st, on_message, 2, a);
  } else {
    const char* a[] = {"XGROUP", "CREATE", st.target, st.group, "$", "MKSTREAM"};
    command(&st, on_group, 6, a);
  }
  if (!st.done) uv_run(st.loop, UV_RUN_DEFAULT);

  /* Tear down: free the context (this closes its poll handle), close the
   * timers, let libuv run the close callbacks, close the loop. */
  if (st.ac_alive) redisAsyncFree(st.ac);
  uv_timer_stop(&st.timer);
  uv_close((uv_handle_t*)&st.timer, NULL);
  uv_timer_stop(&st.conn_timer);
  uv_close((uv_handle_t*)&st.conn_timer, NULL);
  uv_run(st.loop, UV_RUN_DEFAULT);
  uv_loop_close(st.loop);
  free(st.ack_argv);
  free(st.lens);
  bench_hist_free(&st.hist);
  return st.rc;
}
