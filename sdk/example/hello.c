/* hello: a complete evhost plugin in plain C. It logs each event it is given
 * and counts them in the metric "events_seen". */
#include <evh/plugin.h>

#include <stdio.h>

static const evh_host_api* api;
static evh_metric* seen;

static evh_status hello_init(const evh_host_api* a, evh_host* host, evh_str config, void** out) {
  (void)config;
  api = a;
  seen = a->metric_register(host, (evh_str){"events_seen", 11}, EVH_METRIC_COUNTER, (evh_str){"", 0});
  *out = host; /* the instance: here just the host handle, for logging */
  return EVH_OK;
}

static evh_status hello_handle(void* instance, const evh_event* ev, evh_call* call) {
  char line[256];
  int n = snprintf(line, sizeof line, "hello %.*s %.*s", (int)ev->event_type.len, ev->event_type.ptr,
                   (int)ev->event_id.len, ev->event_id.ptr);
  (void)call;
  api->log((evh_host*)instance, EVH_LOG_INFO, (evh_str){line, n < (int)sizeof line ? (size_t)n : sizeof line - 1});
  api->metric_add(seen, 1);
  return EVH_OK; /* or EVH_RETRY / EVH_REJECT, with api->call_set_error(call, why) */
}

/* Designated initializers: a field appended by a later minor of the ABI
 * starts out zero (absent) here, and this keeps compiling warning-free. */
static const evh_plugin_desc hello = {
    .struct_size = sizeof(evh_plugin_desc),
    .abi_version = EVH_ABI_VERSION,
    .name = "hello",
    .version = "1.0.0",
    .description = "says hello to every event",
    .flags = 0, /* inline; EVH_PLUGIN_BLOCKING to run on workers */
    .max_concurrency = 0,
    .init = hello_init,
    .handle = hello_handle,
    .shutdown = NULL,
};

EVH_PLUGIN_EXPORT const evh_plugin_desc* evh_plugin_entry(uint32_t host_abi_version) {
  (void)host_abi_version;
  return &hello;
}
