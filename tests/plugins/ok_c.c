/* ok_c: a well-behaved C test plugin. Counts events in metric "handled";
 * answers per event type: "RETRY" -> EVH_RETRY with a message, "REJECT" ->
 * EVH_REJECT, anything else EVH_OK. */
#include <evh/plugin.h>

#include <stdlib.h>
#include <string.h>

typedef struct ok_c {
  const evh_host_api* api;
  evh_host* host;
  evh_metric* handled;
} ok_c;

static evh_str lit(const char* s) { return (evh_str){s, strlen(s)}; }

static int is(evh_str s, const char* lit_) { return s.len == strlen(lit_) && memcmp(s.ptr, lit_, s.len) == 0; }

static evh_status ok_init(const evh_host_api* api, evh_host* host, evh_str config_json, void** out) {
  ok_c* p = (ok_c*)calloc(1, sizeof(*p));
  (void)config_json;
  if (p == NULL) {
    return EVH_ERR_NOMEM;
  }
  p->api = api;
  p->host = host;
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

static const evh_plugin_desc desc = {sizeof(evh_plugin_desc),
                                     EVH_ABI_VERSION,
                                     "ok_c",
                                     "1.2.3",
                                     "test plugin in C",
                                     0,
                                     0,
                                     ok_init,
                                     ok_handle,
                                     ok_shutdown};

EVH_PLUGIN_EXPORT const evh_plugin_desc* evh_plugin_entry(uint32_t host_abi_version) {
  (void)host_abi_version;
  return &desc;
}
