/* entry_returns_null: declines every host. */
#include <evh/plugin.h>

#include <stddef.h>

EVH_PLUGIN_EXPORT const evh_plugin_desc* evh_plugin_entry(uint32_t host_abi_version) {
  (void)host_abi_version;
  return NULL;
}
