/* abi_wrong_major: a descriptor claiming ABI EVH_ABI_MAKE_VERSION(2, 0); the host must refuse it. */
#include <evh/plugin.h>

#include <stddef.h>

static evh_status t_init(const evh_host_api* api, evh_host* host, evh_str cfg, void** out) {
  (void)api;
  (void)host;
  (void)cfg;
  *out = NULL;
  return EVH_OK;
}
static evh_status t_handle(void* instance, const evh_event* ev, evh_call* call) {
  (void)instance;
  (void)ev;
  (void)call;
  return EVH_OK;
}
static const evh_plugin_desc desc = {sizeof(evh_plugin_desc),
                                     EVH_ABI_MAKE_VERSION(2, 0),
                                     "abi_wrong_major",
                                     "0",
                                     NULL,
                                     0,
                                     0,
                                     t_init,
                                     t_handle,
                                     NULL,
                                     NULL,
                                     NULL};

EVH_PLUGIN_EXPORT const evh_plugin_desc* evh_plugin_entry(uint32_t host_abi_version) {
  (void)host_abi_version;
  return &desc;
}
