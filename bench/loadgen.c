/*
 * evh_loadgen: benchmark load generator for evhost.
 *
 * Sends N JollyJet-style PRODUCT_CREATED events to Redis over one synchronous
 * hiredis connection, pipelined (PUBLISH to a channel or XADD to a stream),
 * either as fast as possible (--rate 0, --batch events per round trip) or paced
 * at --rate events/s. After the last event's reply it sends a BENCH_END
 * sentinel carrying the number sent, then prints one JSON summary line on
 * stdout. Each event carries "sentNs" (CLOCK_REALTIME at append) so a
 * subscriber can measure latency. Errors go to stderr; exit 1 on Redis or I/O
 * errors, 2 on bad arguments.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define PROG "evh_loadgen"
#define EVENT_MAX 512        /* one event's JSON; ~300 bytes in practice */
#define TICK_CAP 10000       /* paced mode: at most this many events per tick */
#define MAX_SLEEP_NS 200000L /* paced mode: sleep at most 200 us per tick */

typedef struct {
  const char* host;
  int port;
  int xadd; /* 0: PUBLISH, 1: XADD */
  const char* target;
  long long count;
  int count_set;
  double duration;
  int duration_set;
  double rate;
  long long batch;
  double sentinel_delay; /* seconds to wait before the sentinel */
  char run_id[65];
  const char* sign_key; /* --sign-key FILE: a whsec_ key; NULL: unsigned */
} options;

typedef struct {
  redisContext* c;
  const options* opt;
  uint64_t id_hi;          /* run-id hash: upper half of every eventId */
  long long receivers_min; /* publish mode: min PUBLISH reply, -1 = none yet */
  char ts[32];             /* ISO-8601 timestamp, refreshed per batch/tick */
  unsigned char key[64];   /* --sign-key's bytes */
  int key_len;             /* 0: messages go unsigned */
  long long signed_n;      /* webhook-ids: <run id>-<n> */
} loadgen;

static void usage(FILE* out) {
  fprintf(out, "Usage: " PROG
               " --target NAME [options]\n"
               "  --host H        Redis host (default 127.0.0.1)\n"
               "  --port P        Redis port (default 6379)\n"
               "  --mode M        publish (PUBLISH <target> <json>) or xadd\n"
               "                  (XADD <target> * event <json>); default publish\n"
               "  --target NAME   channel or stream key (required)\n"
               "  --count N       number of events (default 200000)\n"
               "  --duration S    seconds to send for at --rate R (count = R*S)\n"
               "  --rate R        events per second, 0 = as fast as possible (default 0)\n"
               "  --batch B       pipeline depth at max rate (default 1000)\n"
               "  --run-id ID     id put into correlationId and the sentinel (default: pid)\n"
               "  --sign-key FILE  sign each message (Standard Webhooks headers, docs/signatures.md)\n"
               "                  with the whsec_<base64> key in FILE\n"
               "  --sentinel-delay S  seconds to wait before the sentinel (default 0), so that\n"
               "                  a slow subscriber has drained its backlog when it comes\n"
               "  --help          this text\n");
}

static void parse_args(int argc, char** argv, options* o) {
  static const struct option longopts[] = {{"host", required_argument, NULL, 'h'},
                                           {"port", required_argument, NULL, 'p'},
                                           {"mode", required_argument, NULL, 'm'},
                                           {"target", required_argument, NULL, 't'},
                                           {"count", required_argument, NULL, 'n'},
                                           {"duration", required_argument, NULL, 'd'},
                                           {"rate", required_argument, NULL, 'r'},
                                           {"batch", required_argument, NULL, 'b'},
                                           {"run-id", required_argument, NULL, 'i'},
                                           {"help", no_argument, NULL, 'H'},
                                           {"sentinel-delay", required_argument, NULL, 'S'},
                                           {"sign-key", required_argument, NULL, 'k'},
                                           {NULL, 0, NULL, 0}};
  int ch;
  o->host = "127.0.0.1";
  o->port = 6379;
  o->count = 200000;
  o->batch = 1000;
  snprintf(o->run_id, sizeof o->run_id, "%ld", (long)getpid());
  opterr = 0;
  while ((ch = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
    switch (ch) {
      case 'h':
        if (optarg[0] == '\0') tool_bad_args("--host: empty value");
        o->host = optarg;
        break;
      case 'p':
        o->port = (int)tool_parse_num("port", optarg, 1, 65535, 1);
        break;
      case 'm':
        if (strcmp(optarg, "publish") == 0)
          o->xadd = 0;
        else if (strcmp(optarg, "xadd") == 0)
          o->xadd = 1;
        else
          tool_bad_args("--mode: '%s' is not publish or xadd", optarg);
        break;
      case 't':
        if (optarg[0] == '\0') tool_bad_args("--target: empty value");
        o->target = optarg;
        break;
      case 'n':
        o->count = (long long)tool_parse_num("count", optarg, 1, 1e12, 1);
        o->count_set = 1;
        break;
      case 'd':
        o->duration = tool_parse_num("duration", optarg, 0.001, 1e7, 0);
        o->duration_set = 1;
        break;
      case 'r':
        o->rate = tool_parse_num("rate", optarg, 0, 1e9, 0);
        break;
      case 'b':
        o->batch = (long long)tool_parse_num("batch", optarg, 1, 1e6, 1);
        break;
      case 'k':
        if (optarg[0] == '\0') tool_bad_args("--sign-key: empty value");
        o->sign_key = optarg;
        break;
      case 'S':
        o->sentinel_delay = tool_parse_num("sentinel-delay", optarg, 0, 3600, 0);
        break;
      case 'i': {
        size_t len = strlen(optarg);
        if (len == 0 || len >= sizeof o->run_id ||
            strspn(optarg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != len)
          tool_bad_args("--run-id: '%s' must be 1-64 characters of [A-Za-z0-9._-]", optarg);
        memcpy(o->run_id, optarg, len + 1);
        break;
      }
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
  if (o->duration_set) {
    if (o->count_set) tool_bad_args("--duration: give either --count or --duration, not both");
    if (o->rate <= 0) tool_bad_args("--duration: needs --rate R > 0 (count = R * duration)");
    o->count = (long long)(o->rate * o->duration + 0.5);
    if (o->count < 1) tool_bad_args("--duration: --rate * --duration is less than one event");
  }
}

static void refresh_timestamp(loadgen* g) {
  struct timespec t;
  struct tm tm;
  char base[24];
  clock_gettime(CLOCK_REALTIME, &t);
  gmtime_r(&t.tv_sec, &tm);
  strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(g->ts, sizeof g->ts, "%s.%03dZ", base, (int)((t.tv_nsec / 1000000L) % 1000));
}

/* Reads --sign-key's whsec_<base64> into g->key. */
static void load_key(loadgen* g, const char* path) {
  char text[256];
  FILE* f = fopen(path, "r");
  if (f == NULL || fgets(text, sizeof text, f) == NULL) {
    fprintf(stderr, PROG ": --sign-key: cannot read %s\n", path);
    exit(2);
  }
  fclose(f);
  size_t len = strcspn(text, "\r\n");
  text[len] = '\0';
  if (strncmp(text, "whsec_", 6) != 0 || (len - 6) % 4 != 0 || len - 6 > 88) {
    fprintf(stderr, PROG ": --sign-key: %s does not hold whsec_<base64>\n", path);
    exit(2);
  }
  unsigned char out[96];
  int n = EVP_DecodeBlock(out, (const unsigned char*)text + 6, (int)(len - 6));
  int pad = text[len - 1] == '=' ? (text[len - 2] == '=' ? 2 : 1) : 0;
  if (n < 0 || n - pad < 24 || n - pad > 64) {
    fprintf(stderr, PROG ": --sign-key: %s does not hold a 24 to 64 byte key\n", path);
    exit(2);
  }
  memcpy(g->key, out, (size_t)(n - pad));
  g->key_len = n - pad;
}

/* The signed message around json: headers, blank line, body. Returns its length. */
static size_t sign_json(loadgen* g, const char* json, size_t len, char* out, size_t cap) {
  char id[96];
  snprintf(id, sizeof id, "bench-%s-%lld", g->opt->run_id, ++g->signed_n);
  const long long ts = (long long)time(NULL);
  char content[EVENT_MAX + 160];
  int head = snprintf(content, sizeof content, "%s.%lld.", id, ts);
  if (head < 0 || (size_t)head + len > sizeof content) {
    fprintf(stderr, PROG ": a signed message does not fit\n");
    exit(1);
  }
  memcpy(content + head, json, len);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), g->key, g->key_len, (const unsigned char*)content, (size_t)head + len, mac, &mac_len);
  char b64[64];
  EVP_EncodeBlock((unsigned char*)b64, mac, (int)mac_len);
  int n = snprintf(out, cap, "webhook-id: %s\nwebhook-timestamp: %lld\nwebhook-signature: v1,%s\n\n", id, ts, b64);
  if (n < 0 || (size_t)n + len > cap) {
    fprintf(stderr, PROG ": a signed message does not fit\n");
    exit(1);
  }
  memcpy(out + n, json, len);
  return (size_t)n + len;
}

/* Appends one command whose last argument is the JSON text (signed with --sign-key). */
static void append_json(loadgen* g, const char* json, size_t len, const char* what) {
  char signed_msg[EVENT_MAX + 256];
  if (g->key_len > 0) {
    len = sign_json(g, json, len, signed_msg, sizeof signed_msg);
    json = signed_msg;
  }
  const char* argv[5];
  size_t lens[5];
  int argc = 0;
  argv[argc++] = g->opt->xadd ? "XADD" : "PUBLISH";
  argv[argc++] = g->opt->target;
  if (g->opt->xadd) {
    argv[argc++] = "*";
    argv[argc++] = "event";
  }
  argv[argc++] = json;
  for (int k = 0; k < argc; k++) lens[k] = (k == argc - 1) ? len : strlen(argv[k]);
  if (redisAppendCommandArgv(g->c, argc, argv, lens) != REDIS_OK) {
    fprintf(stderr, PROG ": %s %s: cannot append: %s\n", argv[0], what, g->c->errstr);
    exit(1);
  }
}

/* Formats and appends event number i (1-based); stamps sentNs just before. */
static void append_event(loadgen* g, long long i) {
  char json[EVENT_MAX];
  uint64_t lo = (uint64_t)i;
  int n =
      snprintf(json, sizeof json,
               "{\"eventId\":\"%08llx-%04llx-%04llx-%04llx-%012llx\",\"eventType\":\"PRODUCT_CREATED\","
               "\"timestamp\":\"%s\",\"correlationId\":\"bench-%s\",\"payload\":{"
               "\"productId\":\"prod-%08lld\",\"name\":\"Benchmark Mug %lld\","
               "\"description\":\"Stoneware mug, 350 ml, dishwasher safe\",\"price\":12.5,"
               "\"category\":\"kitchen\",\"stock\":42,\"sentNs\":%lld}}",
               (unsigned long long)(g->id_hi >> 32), (unsigned long long)((g->id_hi >> 16) & 0xffff),
               (unsigned long long)(g->id_hi & 0xffff), (unsigned long long)((lo >> 48) & 0xffff),
               (unsigned long long)(lo & 0xffffffffffffULL), g->ts, g->opt->run_id, i, i, (long long)tool_real_ns());
  if (n < 0 || (size_t)n >= sizeof json) {
    fprintf(stderr, PROG ": event %lld does not fit in %d bytes\n", i, EVENT_MAX);
    exit(1);
  }
  char what[40];
  snprintf(what, sizeof what, "event %lld", i);
  append_json(g, json, (size_t)n, what);
}

/* Reads one reply; any error (Redis or I/O) ends the program with exit 1. */
static void read_reply(loadgen* g, const char* what) {
  const char* cmd = g->opt->xadd ? "XADD" : "PUBLISH";
  void* p = NULL;
  if (redisGetReply(g->c, &p) != REDIS_OK || p == NULL) {
    fprintf(stderr, PROG ": %s %s: I/O error: %s\n", cmd, what, g->c->errstr[0] ? g->c->errstr : "no reply");
    exit(1);
  }
  redisReply* r = p;
  if (r->type == REDIS_REPLY_ERROR) {
    fprintf(stderr, PROG ": %s %s: Redis error: %s\n", cmd, what, r->str);
    exit(1);
  }
  if (!g->opt->xadd) {
    if (r->type != REDIS_REPLY_INTEGER) {
      fprintf(stderr, PROG ": PUBLISH %s: unexpected reply type %d\n", what, r->type);
      exit(1);
    }
    if (g->receivers_min < 0 || r->integer < g->receivers_min) g->receivers_min = r->integer;
  } else if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS) {
    fprintf(stderr, PROG ": XADD %s: unexpected reply type %d\n", what, r->type);
    exit(1);
  }
  freeReplyObject(r);
}

/* Appends events first+1 .. first+n, then reads their n replies. */
static void send_batch(loadgen* g, long long first, long long n) {
  refresh_timestamp(g);
  for (long long k = 1; k <= n; k++) append_event(g, first + k);
  for (long long k = 1; k <= n; k++) {
    char what[40];
    snprintf(what, sizeof what, "event %lld", first + k);
    read_reply(g, what);
  }
}

static void sleep_ns(long ns) {
  struct timespec d = {(time_t)(ns / 1000000000L), ns % 1000000000L};
  while (clock_nanosleep(CLOCK_MONOTONIC, 0, &d, &d) == EINTR) {
  }
}

static void send_sentinel(loadgen* g, long long sent) {
  char json[EVENT_MAX];
  refresh_timestamp(g);
  int n = snprintf(json, sizeof json,
                   "{\"eventId\":\"bench-end-%s\",\"eventType\":\"BENCH_END\",\"timestamp\":\"%s\","
                   "\"correlationId\":\"bench-%s\",\"payload\":{\"sent\":%lld,\"sentNs\":%lld}}",
                   g->opt->run_id, g->ts, g->opt->run_id, sent, (long long)tool_real_ns());
  if (n < 0 || (size_t)n >= sizeof json) {
    fprintf(stderr, PROG ": sentinel does not fit in %d bytes\n", EVENT_MAX);
    exit(1);
  }
  append_json(g, json, (size_t)n, "sentinel");
  read_reply(g, "sentinel");
}

static void print_json_string(const char* s) {
  putchar('"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c < 0x20)
      printf("\\u%04x", c);
    else
      putchar(c);
  }
  putchar('"');
}

int main(int argc, char** argv) {
  options opt;
  memset(&opt, 0, sizeof opt);
  tool_init(PROG);
  parse_args(argc, argv, &opt);
  signal(SIGPIPE, SIG_IGN); /* a dead peer is an I/O error, not a kill */

  loadgen g;
  memset(&g, 0, sizeof g);
  g.opt = &opt;
  g.receivers_min = -1;
  /* FNV-1a of the run id: the first 16 hex digits of every eventId. */
  g.id_hi = 1469598103934665603ULL;
  for (const char* s = opt.run_id; *s; s++) g.id_hi = (g.id_hi ^ (unsigned char)*s) * 1099511628211ULL;
  if (opt.sign_key != NULL) load_key(&g, opt.sign_key);

  g.c = redisConnect(opt.host, opt.port);
  if (g.c == NULL || g.c->err) {
    fprintf(stderr, PROG ": cannot connect to %s:%d: %s\n", opt.host, opt.port, g.c ? g.c->errstr : "out of memory");
    if (g.c != NULL) redisFree(g.c);
    return 1;
  }

  long long sent = 0;
  double t_first = tool_mono_s(), t_last;
  if (opt.rate <= 0) {
    while (sent < opt.count) {
      long long n = opt.count - sent < opt.batch ? opt.count - sent : opt.batch;
      send_batch(&g, sent, n);
      sent += n;
    }
  } else {
    double start = t_first;
    int first = 1;
    while (sent < opt.count) {
      long long due = (long long)(opt.rate * (tool_mono_s() - start));
      if (due > opt.count) due = opt.count;
      long long n = due - sent > TICK_CAP ? TICK_CAP : due - sent;
      if (n > 0) {
        if (first) {
          t_first = tool_mono_s();
          first = 0;
        }
        send_batch(&g, sent, n);
        sent += n;
      }
      if (sent >= opt.count) break;
      double wait = (double)(sent + 1) / opt.rate - (tool_mono_s() - start);
      if (wait > 0) sleep_ns(wait * 1e9 < (double)MAX_SLEEP_NS ? (long)(wait * 1e9) : MAX_SLEEP_NS);
    }
  }
  t_last = tool_mono_s();
  if (opt.sentinel_delay > 0) sleep_ns((long)(opt.sentinel_delay * 1e9));
  send_sentinel(&g, sent);
  redisFree(g.c);

  double seconds = t_last - t_first;
  printf("{\"tool\":\"loadgen\",\"mode\":\"%s\",\"target\":", opt.xadd ? "xadd" : "publish");
  print_json_string(opt.target);
  printf(",\"sent\":%lld,\"seconds\":%.6f,\"events_per_s\":%.1f,\"rate\":%g,\"receivers_min\":", sent, seconds,
         seconds > 0 ? (double)sent / seconds : 0.0, opt.rate);
  if (opt.xadd)
    printf("null}\n");
  else
    printf("%lld}\n", g.receivers_min);
  if (!opt.xadd && g.receivers_min == 0) fprintf(stderr, PROG ": warning: some PUBLISH reached no subscriber\n");
  return fflush(stdout) == 0 ? 0 : 1;
}
