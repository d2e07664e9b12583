/* abi10_recorder: a plugin built against ABI 1.0 and kept as a binary
 * (abi10_recorder.so, built by build.sh from this file at the commit that
 * added it, when plugin.h said EVH_ABI_MINOR 0). Every later host must load
 * and run it: tests/integration/abi10_artifact_test.cpp does.
 *
 * It uses most of the 1.0 host API: log, log_enabled, env_prefix,
 * metric_register/add/set, redis_command with a reply callback, post, and
 * handle() answering EVH_PENDING completed by complete() -- so a host that
 * moved or changed any of them breaks it.
 *
 * handle(): RPUSH "<prefix>abi10:seen" "<eventType>|<eventId>|<attempt>",
 * completed from the reply; event type "REJECT" is rejected with a message. */
#include <evh/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rec {
  const evh_host_api* api;
  evh_host* host;
  evh_metric* handled;
  evh_metric* in_flight;
  char key[128];
} rec;

typedef struct pending {
  rec* r;
  evh_call* call;
} pending;

static evh_str lit(const char* s) {
  evh_str out;
  out.ptr = s;
  out.len = strlen(s);
  return out;
}

static void said_hello(void* user_data) {
  rec* r = (rec*)user_data;
  if (r->api->log_enabled(r->host, EVH_LOG_INFO)) {
    r->api->log(r->host, EVH_LOG_INFO, lit("abi10_recorder: posted to the loop"));
  }
}

static evh_status r_init(const evh_host_api* api, evh_host* host, evh_str config_json, void** out) {
  rec* r = (rec*)calloc(1, sizeof(*r));
  evh_str prefix;
  (void)config_json;
  if (r == NULL) {
    return EVH_ERR_NOMEM;
  }
  r->api = api;
  r->host = host;
  prefix = api->env_prefix(host);
  snprintf(r->key, sizeof(r->key), "%.*sabi10:seen", (int)prefix.len, prefix.ptr);
  r->handled = api->metric_register(host, lit("handled"), EVH_METRIC_COUNTER, lit("events recorded"));
  r->in_flight = api->metric_register(host, lit("in_flight"), EVH_METRIC_GAUGE, lit("records on their way"));
  if (r->handled == NULL || r->in_flight == NULL) {
    api->set_error(host, lit("abi10_recorder: metric_register failed"));
    free(r);
    return EVH_ERR_INTERNAL;
  }
  api->metric_set(r->in_flight, 0);
  api->post(host, said_hello, r);
  *out = r;
  return EVH_OK;
}

static void on_reply(void* user_data, evh_status status, const evh_reply* reply) {
  pending* p = (pending*)user_data;
  rec* r = p->r;
  r->api->metric_add(r->in_flight, -1);
  if (status == EVH_OK && reply->type == EVH_REPLY_INTEGER) {
    r->api->metric_add(r->handled, 1);
    r->api->complete(p->call, EVH_OK, lit(""));
  } else {
    r->api->complete(p->call, EVH_RETRY, lit("abi10_recorder: RPUSH failed"));
  }
  free(p);
}

static evh_status r_handle(void* instance, const evh_event* ev, evh_call* call) {
  rec* r = (rec*)instance;
  char record[512];
  evh_str argv[3];
  pending* p;
  if (ev->event_type.len == 6 && memcmp(ev->event_type.ptr, "REJECT", 6) == 0) {
    r->api->call_set_error(call, lit("abi10_recorder rejects REJECT"));
    return EVH_REJECT;
  }
  snprintf(record, sizeof(record), "%.*s|%.*s|%u", (int)ev->event_type.len, ev->event_type.ptr, (int)ev->event_id.len,
           ev->event_id.ptr, (unsigned)ev->attempt);
  p = (pending*)malloc(sizeof(*p));
  if (p == NULL) {
    return EVH_RETRY;
  }
  p->r = r;
  p->call = call;
  argv[0] = lit("RPUSH");
  argv[1] = lit(r->key);
  argv[2] = lit(record);
  r->api->metric_add(r->in_flight, 1);
  if (r->api->redis_command(r->host, 3, argv, on_reply, p) != EVH_OK) {
    r->api->metric_add(r->in_flight, -1);
    free(p);
    r->api->call_set_error(call, lit("abi10_recorder: redis_command refused"));
    return EVH_RETRY;
  }
  return EVH_PENDING;
}

static void r_shutdown(void* instance) { free(instance); }

static const evh_plugin_desc desc = {sizeof(evh_plugin_desc),
                                     EVH_ABI_VERSION,
                                     "abi10_recorder",
                                     "1.0.0",
                                     "a plugin binary built against ABI 1.0, kept to prove it still loads",
                                     0,
                                     0,
                                     r_init,
                                     r_handle,
                                     r_shutdown};

EVH_PLUGIN_EXPORT const evh_plugin_desc* evh_plugin_entry(uint32_t host_abi_version) {
  (void)host_abi_version;
  return &desc;
}
