/* init_fails: init() refuses with its own message. */
#include <evh/plugin.h>

#include <stddef.h>

static evh_status t_init(const evh_host_api* api, evh_host* host, evh_str cfg, void** out) {
  static const char msg[] = "database unreachable at 10.0.0.1:5432";
  (void)cfg;
  *out = NULL;
  api->set_error(host, (evh_str){msg, sizeof(msg) - 1});
  return EVH_ERR_UNAVAILABLE;
}
static evh_status t_handle(void* instance, const evh_event* ev, evh_call* call) {
  (void)instance;
  (void)ev;
  (void)call;
  return EVH_OK;
}
static const evh_plugin_desc desc = {
    sizeof(evh_plugin_desc), EVH_ABI_VERSION, "init_fails", "0", NULL, 0, 0, t_init, t_handle, NULL, NULL, NULL};

EVH_PLUGIN_EXPORT const evh_plugin_desc* evh_plugin_entry(uint32_t host_abi_version) {
  (void)host_abi_version;
  return &desc;
}
