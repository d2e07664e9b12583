/* abi_older_minor: a descriptor of exactly ABI 1.0's size placed at the very
 * end of a readable page, followed by an inaccessible guard page, so that a
 * host reading one byte past struct_size crashes. It stands for any plugin
 * built against an older minor than the host: the host must read only
 * struct_size bytes. The struct below is a frozen copy of the 1.0 layout. */
#include <evh/plugin.h>

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct desc_v1_0 {
  uint32_t struct_size;
  uint32_t abi_version;
  const char* name;
  const char* version;
  const char* description;
  uint32_t flags;
  uint32_t max_concurrency;
  evh_status (*init)(const evh_host_api*, evh_host*, evh_str, void**);
  evh_status (*handle)(void*, const evh_event*, evh_call*);
  void (*shutdown)(void*);
} desc_v1_0;

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

static const desc_v1_0* guarded;

EVH_PLUGIN_EXPORT const evh_plugin_desc* evh_plugin_entry(uint32_t host_abi_version) {
  (void)host_abi_version;
  if (guarded == NULL) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char* mem = (char*)mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    desc_v1_0 d = {
        sizeof(desc_v1_0), EVH_ABI_MAKE_VERSION(1, 0), "abi_older_minor", "1.0", NULL, 0, 0, t_init, t_handle, NULL};
    desc_v1_0* at;
    if (mem == MAP_FAILED) {
      return NULL;
    }
    at = (desc_v1_0*)(void*)(mem + page - sizeof(desc_v1_0));
    memcpy(at, &d, sizeof(d));
    mprotect(mem + page, page, PROT_NONE);
    guarded = at;
  }
  return (const evh_plugin_desc*)(const void*)guarded;
}
