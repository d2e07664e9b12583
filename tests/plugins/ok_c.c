/* ok_c: a well-behaved C test plugin. Counts events in metric "handled";
 * answers per event type: "RETRY" -> EVH_RETRY with a message, "REJECT" ->
 * EVH_REJECT, anything else EVH_OK. Its health (ABI 1.1): DOWN when its
 * config contains "health_down", DEGRADED for "health_degraded". */
#include <evh/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ok_c {
  const evh_host_api* api;
  evh_host* host;
  evh_metric* handled;
  evh_health health;
} ok_c;

static evh_str lit(const char* s) { return (evh_str){s, strlen(s)}; }

static int is(evh_str s, const char* lit_) { return s.len == strlen(lit_) && memcmp(s.ptr, lit_, s.len) == 0; }

static evh_status ok_init(const evh_host_api* api, evh_host* host, evh_str config_json, void** out) {
  ok_c* p = (ok_c*)calloc(1, sizeof(*p));
  if (p == NULL) {
    return EVH_ERR_NOMEM;
  }
  p->api = api;
  p->host = host;
  p->health = strstr(config_json.ptr, "health_down") != NULL       ? EVH_HEALTH_DOWN
              : strstr(config_json.ptr, "health_degraded") != NULL ? EVH_HEALTH_DEGRADED
                                                                   : EVH_HEALTH_OK;
  p->handled = api->metric_register(host, lit("handled"), EVH_METRIC_COUNTER, lit("events handled"));
  *out = p;
  return EVH_OK;
}

static evh_status ok_handle(void* instance, const evh_event* ev, evh_call* call) {
  ok_c* p = (ok_c*)instance;
  p->api->metric_add(p->handled, 1);
  if (is(ev->event_type, "RETRY")) {
    p->api->call_set_error(call, lit("ok_c asked for a retry"));
    return EVH_RETRY;
  }
  if (is(ev->event_type, "REJECT")) {
    p->api->call_set_error(call, lit("ok_c rejected it"));
    return EVH_REJECT;
  }
  return EVH_OK;
}

static void ok_shutdown(void* instance) { free(instance); }

static evh_health ok_health(void* instance, char* detail, size_t detail_size) {
  const ok_c* p = (const ok_c*)instance;
  if (p->health != EVH_HEALTH_OK) {
    snprintf(detail, detail_size, "ok_c was told to be %s", p->health == EVH_HEALTH_DOWN ? "down" : "degraded");
  }
  return p->health;
}

static const evh_plugin_desc desc = {
    .struct_size = sizeof(evh_plugin_desc),
    .abi_version = EVH_ABI_VERSION,
    .name = "ok_c",
    .version = "1.2.3",
    .description = "test plugin in C",
    .init = ok_init,
    .handle = ok_handle,
    .shutdown = ok_shutdown,
    .health = ok_health,
};

EVH_PLUGIN_EXPORT const evh_plugin_desc* evh_plugin_entry(uint32_t host_abi_version) {
  (void)host_abi_version;
  return &desc;
}
