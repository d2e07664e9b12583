/* audit: the plan's audit handler (Step 2.3), written against the plain C ABI.
 *
 * Today it logs one line per event it is routed. The audit file with
 * redaction, fsync policy and rotation comes with the JollyJet plugins issue. */
#include <evh/plugin.h>

#include <stdio.h>
#include <stdlib.h>

typedef struct audit {
  const evh_host_api* api;
  evh_host* host;
  evh_metric* logged;
} audit;

static evh_status audit_init(const evh_host_api* api, evh_host* host, evh_str config_json, void** out) {
  audit* a = (audit*)calloc(1, sizeof(*a));
  (void)config_json;
  if (a == NULL) {
    static const char msg[] = "audit: out of memory";
    api->set_error(host, (evh_str){msg, sizeof(msg) - 1});
    return EVH_ERR_NOMEM;
  }
  a->api = api;
  a->host = host;
  a->logged = api->metric_register(host, (evh_str){"events_logged", 13}, EVH_METRIC_COUNTER,
                                   (evh_str){"events written to the audit log", 31});
  *out = a;
  return EVH_OK;
}

static evh_status audit_handle(void* instance, const evh_event* ev, evh_call* call) {
  audit* a = (audit*)instance;
  char line[1024];
  int n;
  (void)call;
  n = snprintf(line, sizeof(line), "audit eventType=%.*s eventId=%.*s correlationId=%.*s timestamp=%.*s",
               (int)ev->event_type.len, ev->event_type.ptr, (int)ev->event_id.len, ev->event_id.ptr,
               (int)ev->correlation_id.len, ev->correlation_id.ptr, (int)ev->timestamp.len, ev->timestamp.ptr);
  if (n > 0) {
    size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    a->api->log(a->host, EVH_LOG_INFO, (evh_str){line, len});
  }
  a->api->metric_add(a->logged, 1);
  return EVH_OK;
}

static void audit_shutdown(void* instance) { free(instance); }

static const evh_plugin_desc audit_desc = {
    sizeof(evh_plugin_desc), EVH_ABI_VERSION, "audit", "0.1.0", "JollyJet audit log of user activity",
    0,                       0,               audit_init, audit_handle, audit_shutdown,
};

EVH_PLUGIN_EXPORT const evh_plugin_desc* evh_plugin_entry(uint32_t host_abi_version) {
  (void)host_abi_version;
  return &audit_desc;
}
