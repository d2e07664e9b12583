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
static const evh_plugin_desc c99_desc = {
    sizeof(evh_plugin_desc), EVH_ABI_VERSION, "c99", "1", NULL, 0, 0, c99_init, c99_handle, NULL};

EVH_PLUGIN_EXPORT const evh_plugin_desc* evh_plugin_entry(uint32_t host_abi_version) {
  (void)host_abi_version;
  return &c99_desc;
}
