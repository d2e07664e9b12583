/* short_descriptor: a descriptor of ABI 1.1/1.2's size (it ends where 1.3's
 * validate_config begins) placed at the very end of a readable page, followed
 * by an inaccessible guard page, so that a host reading one byte past
 * struct_size crashes. Built twice:
 *   abi12_no_validate  declares ABI 1.2, as a plugin built against the 1.2
 *                      SDK does (its ABI note says 1.2 too): no
 *                      validate_config, its config checked by init alone;
 *   abi13_short_desc   declares ABI 1.3 but a 1.2-sized descriptor: the host
 *                      goes by struct_size and finds no validate_config.
 * init refuses a config containing "init_refuses", so a test can tell that
 * only init checked it. The struct below is a frozen copy of the 1.2 layout. */
#define EVH_NO_ABI_NOTE
#include <evh/plugin.h>

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef DESC_MINOR
#error "DESC_MINOR: the minor version the descriptor declares"
#endif
#define STR2(x) #x
#define STR(x) STR2(x)

static const evh__abi_note note __attribute__((section(EVH_ABI_NOTE_SECTION), used, aligned(4))) = {
    4, 8, EVH_ABI_NOTE_TYPE, EVH_ABI_NOTE_NAME, 1, DESC_MINOR};

typedef struct desc_v1_2 {
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
  evh_health (*health)(void*, char*, size_t);
} desc_v1_2;

static int contains(evh_str s, const char* needle) {
  size_t n = strlen(needle);
  size_t i;
  for (i = 0; s.ptr != NULL && i + n <= s.len; ++i) {
    if (memcmp(s.ptr + i, needle, n) == 0) {
      return 1;
    }
  }
  return 0;
}

static evh_status t_init(const evh_host_api* api, evh_host* host, evh_str cfg, void** out) {
  *out = NULL;
  if (contains(cfg, "init_refuses")) {
    static const char why[] = "init refuses this config";
    evh_str msg;
    msg.ptr = why;
    msg.len = sizeof why - 1;
    api->set_error(host, msg);
    return EVH_ERR_INVALID;
  }
  return EVH_OK;
}
static evh_status t_handle(void* instance, const evh_event* ev, evh_call* call) {
  (void)instance;
  (void)ev;
  (void)call;
  return EVH_OK;
}

static const desc_v1_2* guarded;

EVH_PLUGIN_EXPORT const evh_plugin_desc* evh_plugin_entry(uint32_t host_abi_version) {
  (void)host_abi_version;
  if (guarded == NULL) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char* mem = (char*)mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    desc_v1_2 d = {sizeof(desc_v1_2),
                   EVH_ABI_MAKE_VERSION(1, DESC_MINOR),
                   DESC_NAME,
                   "1." STR(DESC_MINOR),
                   NULL,
                   0,
                   0,
                   t_init,
                   t_handle,
                   NULL,
                   NULL};
    desc_v1_2* at;
    if (mem == MAP_FAILED) {
      return NULL;
    }
    at = (desc_v1_2*)(void*)(mem + page - sizeof(desc_v1_2));
    memcpy(at, &d, sizeof(d));
    mprotect(mem + page, page, PROT_NONE);
    guarded = at;
  }
  return (const evh_plugin_desc*)(const void*)guarded;
}
