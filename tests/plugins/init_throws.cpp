// init_throws: written against the bare C ABI in C++, its init() lets an
// exception escape (no SDK to catch it): the host must still name the
// instance and the file.
#include <evh/plugin.h>

#include <stdexcept>

namespace {

evh_status initThrows(const evh_host_api*, evh_host*, evh_str, void**) {
  throw std::runtime_error("connection pool exhausted");
}

evh_status handleOk(void*, const evh_event*, evh_call*) { return EVH_OK; }

const evh_plugin_desc kDesc = {sizeof(evh_plugin_desc),
                               EVH_ABI_VERSION,
                               "init_throws",
                               "0",
                               nullptr,
                               0,
                               0,
                               initThrows,
                               handleOk,
                               nullptr,
                               nullptr,
                               nullptr};

}  // namespace

EVH_PLUGIN_EXPORT const evh_plugin_desc* evh_plugin_entry(uint32_t) { return &kDesc; }
