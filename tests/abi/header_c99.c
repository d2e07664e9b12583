/* The SDK header compiles as strict C99 (-std=c99 -pedantic -Werror), and the
 * v1 layouts are pinned here for C compilers too (a negative array size
 * fails the build: C99 has no _Static_assert). */
#include <evh/plugin.h>

#define EVH_PIN(name, cond) typedef char evh_pin_##name[(cond) ? 1 : -1]

EVH_PIN(abi_major, EVH_ABI_MAJOR == 1);
EVH_PIN(version_packing, EVH_ABI_VERSION == ((1u << 16) | EVH_ABI_MINOR));
EVH_PIN(status_width, sizeof(evh_status) == 4);
EVH_PIN(str_layout, sizeof(evh_str) == 2 * sizeof(void*) && offsetof(evh_str, len) == sizeof(void*));
EVH_PIN(desc_head, offsetof(evh_plugin_desc, struct_size) == 0 && offsetof(evh_plugin_desc, abi_version) == 4);
EVH_PIN(api_head, offsetof(evh_host_api, struct_size) == 0 && offsetof(evh_host_api, abi_version) == 4);
EVH_PIN(event_head, offsetof(evh_event, struct_size) == 0);
EVH_PIN(reply_head, offsetof(evh_reply, struct_size) == 0);
EVH_PIN(spec_head, offsetof(evh_metric_spec, struct_size) == 0);
EVH_PIN(health_values, EVH_HEALTH_OK == 0 && EVH_HEALTH_DEGRADED == 1 && EVH_HEALTH_DOWN == 2);
EVH_PIN(validate_config_appended,
        offsetof(evh_plugin_desc, validate_config) == offsetof(evh_plugin_desc, health) + sizeof(void (*)(void)));
EVH_PIN(statuses, EVH_OK == 0 && EVH_RETRY == 1 && EVH_REJECT == 2 && EVH_PENDING == 3);

/* The plugin side of the contract compiles in C: an entry point. */
static evh_status c99_init(const evh_host_api* api, evh_host* host, evh_str config, void** out) {
  (void)api;
  (void)host;
  (void)config;
  *out = NULL;
  return EVH_OK;
}
static evh_status c99_handle(void* instance, const evh_event* ev, evh_call* call) {
  (void)instance;
  (void)call;
  return EVH_HAS_FIELD(ev, evh_event, delivery_id) ? EVH_OK : EVH_RETRY;
}
/* Designated initializers (as the SDK recommends): fields appended in later
 * minor versions start as zero, and the plugin's source keeps compiling
 * with -Wextra -Werror when the SDK grows. */
static evh_health c99_health(void* instance, char* detail, size_t detail_size) {
  (void)instance;
  (void)detail;
  (void)detail_size;
  return EVH_HEALTH_OK;
}
static evh_status c99_validate_config(evh_str config, evh_config_error_fn report, void* ctx) {
  static const char where[] = "/size";
  static const char what[] = "must be a number";
  if (config.len > 2) {
    evh_str pointer;
    evh_str message;
    pointer.ptr = where;
    pointer.len = sizeof where - 1;
    message.ptr = what;
    message.len = sizeof what - 1;
    report(ctx, pointer, message);
    return EVH_ERR_INVALID;
  }
  return EVH_OK;
}
static const evh_plugin_desc c99_desc = {.struct_size = sizeof(evh_plugin_desc),
                                         .abi_version = EVH_ABI_VERSION,
                                         .name = "c99",
                                         .version = "1",
                                         .init = c99_init,
                                         .handle = c99_handle,
                                         .health = c99_health,
                                         .validate_config = c99_validate_config};

EVH_PLUGIN_EXPORT const evh_plugin_desc* evh_plugin_entry(uint32_t host_abi_version) {
  (void)host_abi_version;
  return &c99_desc;
}
