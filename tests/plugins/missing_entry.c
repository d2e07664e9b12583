/* missing_entry: a shared object without evh_plugin_entry. */
#include <evh/plugin.h>

EVH_PLUGIN_EXPORT int evh_plugin_entry_typo(void);
EVH_PLUGIN_EXPORT int evh_plugin_entry_typo(void) { return 0; }
