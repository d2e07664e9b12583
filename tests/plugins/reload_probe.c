/* reload_probe: a C test plugin for hot reload (no C++ runtime, so that its
 * library really leaves the process when unloaded). Built twice, as
 * reload_probe_v1 and reload_probe_v2 (PROBE_VERSION), with the same
 * descriptor name: a test renames one build over the other.
 *
 * Config (flat JSON): {"tag": "a", "key": "probe:events", "log": "/path",
 *                      "pending_ms": 0, "fail_init": false}
 * handle() answers PENDING and RPUSHes "eventId|tag|v<VERSION>" to `key`
 * through the host; the reply completes the call (OK). With pending_ms, a
 * thread of the plugin waits that long first. init and shutdown append
 * "init <tag> v<VERSION>" / "shutdown <tag> v<VERSION>" to `log`; shutdown
 * waits for its threads. fail_init: init fails, naming the tag. */
#include <evh/plugin.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef PROBE_VERSION
#define PROBE_VERSION 1
#endif
#define PROBE_STR2(x) #x
#define PROBE_STR(x) PROBE_STR2(x)

typedef struct probe {
  const evh_host_api* api;
  evh_host* host;
  char tag[64];
  char key[128];
  char log[512];
  long pending_ms;
  pthread_mutex_t mutex;
  pthread_t* threads; /* started by handle(), joined by shutdown() */
  size_t n_threads;
  size_t cap_threads;
} probe;

typedef struct job {
  probe* p;
  evh_call* call;
  char line[256];
} job;

static evh_str lit(const char* s) { return (evh_str){s, strlen(s)}; }

/* The string value of "key": in json (NUL-terminated), or "" */
static void str_field(const char* json, const char* key, char* out, size_t cap) {
  char pat[64];
  snprintf(pat, sizeof(pat), "\"%s\":\"", key);
  out[0] = '\0';
  const char* at = strstr(json, pat);
  if (at == NULL) {
    return;
  }
  at += strlen(pat);
  size_t n = 0;
  while (at[n] != '\0' && at[n] != '"' && n + 1 < cap) {
    out[n] = at[n];
    ++n;
  }
  out[n] = '\0';
}

static long num_field(const char* json, const char* key) {
  char pat[64];
  snprintf(pat, sizeof(pat), "\"%s\":", key);
  const char* at = strstr(json, pat);
  return at == NULL ? 0 : strtol(at + strlen(pat), NULL, 10);
}

static void log_line(const probe* p, const char* what) {
  if (p->log[0] == '\0') {
    return;
  }
  char line[256];
  int n = snprintf(line, sizeof(line), "%s %s v%d\n", what, p->tag, PROBE_VERSION);
  int fd = open(p->log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0) {
    if (write(fd, line, (size_t)n) != n) {
      /* a test reading the log finds the line missing */
    }
    close(fd);
  }
}

static evh_status probe_init(const evh_host_api* api, evh_host* host, evh_str config_json, void** out) {
  char* json = (char*)malloc(config_json.len + 1);
  probe* p = (probe*)calloc(1, sizeof(*p));
  if (json == NULL || p == NULL) {
    free(json);
    free(p);
    return EVH_ERR_NOMEM;
  }
  memcpy(json, config_json.ptr, config_json.len);
  json[config_json.len] = '\0';
  p->api = api;
  p->host = host;
  str_field(json, "tag", p->tag, sizeof(p->tag));
  str_field(json, "key", p->key, sizeof(p->key));
  if (p->key[0] == '\0') {
    snprintf(p->key, sizeof(p->key), "probe:events");
  }
  str_field(json, "log", p->log, sizeof(p->log));
  p->pending_ms = num_field(json, "pending_ms");
  const int fail = strstr(json, "\"fail_init\":true") != NULL;
  free(json);
  if (fail) {
    char msg[128];
    snprintf(msg, sizeof(msg), "reload_probe %s was told to fail its init", p->tag);
    api->set_error(host, lit(msg));
    free(p);
    return EVH_ERR_INVALID;
  }
  pthread_mutex_init(&p->mutex, NULL);
  log_line(p, "init");
  *out = p;
  return EVH_OK;
}

static void on_reply(void* user_data, evh_status status, const evh_reply* reply) {
  (void)reply;
  job* j = (job*)user_data;
  j->p->api->complete(j->call, status == EVH_OK ? EVH_OK : EVH_RETRY, lit(status == EVH_OK ? "" : "no reply"));
  free(j);
}

static void send_record(job* j) {
  evh_str argv[3] = {lit("RPUSH"), lit(j->p->key), lit(j->line)};
  if (j->p->api->redis_command(j->p->host, 3, argv, on_reply, j) != EVH_OK) {
    j->p->api->complete(j->call, EVH_RETRY, lit("redis_command refused"));
    free(j);
  }
}

static void* later(void* arg) {
  job* j = (job*)arg;
  probe* p = j->p;
  struct timespec ts = {p->pending_ms / 1000, (p->pending_ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
  send_record(j);
  return NULL;
}

static evh_status probe_handle(void* instance, const evh_event* ev, evh_call* call) {
  probe* p = (probe*)instance;
  job* j = (job*)calloc(1, sizeof(*j));
  if (j == NULL) {
    return EVH_RETRY;
  }
  j->p = p;
  j->call = call;
  snprintf(j->line, sizeof(j->line), "%.*s|%s|v%d", (int)ev->event_id.len, ev->event_id.ptr, p->tag, PROBE_VERSION);
  if (p->pending_ms <= 0) {
    send_record(j);
    return EVH_PENDING;
  }
  pthread_mutex_lock(&p->mutex);
  if (p->n_threads == p->cap_threads) {
    size_t cap = p->cap_threads == 0 ? 16 : p->cap_threads * 2;
    pthread_t* more = (pthread_t*)realloc(p->threads, cap * sizeof(pthread_t));
    if (more == NULL) {
      pthread_mutex_unlock(&p->mutex);
      free(j);
      return EVH_RETRY;
    }
    p->threads = more;
    p->cap_threads = cap;
  }
  if (pthread_create(&p->threads[p->n_threads], NULL, later, j) != 0) {
    pthread_mutex_unlock(&p->mutex);
    free(j);
    return EVH_RETRY;
  }
  ++p->n_threads;
  pthread_mutex_unlock(&p->mutex);
  return EVH_PENDING;
}

static void probe_shutdown(void* instance) {
  probe* p = (probe*)instance;
  for (size_t i = 0; i < p->n_threads; ++i) {
    pthread_join(p->threads[i], NULL);
  }
  log_line(p, "shutdown");
  free(p->threads);
  pthread_mutex_destroy(&p->mutex);
  free(p);
}

static const evh_plugin_desc desc = {
    .struct_size = sizeof(evh_plugin_desc),
    .abi_version = EVH_ABI_VERSION,
    .name = "reload_probe",
    .version = "1.0." PROBE_STR(PROBE_VERSION),
    .description = "hot reload test plugin",
    .init = probe_init,
    .handle = probe_handle,
    .shutdown = probe_shutdown,
};

EVH_PLUGIN_EXPORT const evh_plugin_desc* evh_plugin_entry(uint32_t host_abi_version) {
  (void)host_abi_version;
  return &desc;
}
