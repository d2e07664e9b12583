/* note_ctor_marker: an ELF constructor that creates the file named by $EVH_TEST_MARKER, and an ABI note
 * claiming ABI NOTE_MAJOR.NOTE_MINOR (an incompatible one). The host must refuse it from the note alone,
 * before dlopen: the marker file must never appear. Its descriptor claims the same version, so a host that
 * only checked after dlopen would refuse it too -- but only after the constructor ran. */
#define EVH_NO_ABI_NOTE
#include <evh/plugin.h>

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((constructor)) static void leave_marker(void) {
  const char* marker = getenv("EVH_TEST_MARKER");
  if (marker != NULL) {
    int fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) {
      close(fd);
    }
  }
}

static const evh__abi_note note __attribute__((section(EVH_ABI_NOTE_SECTION), used, aligned(4))) = {
    4, 8, EVH_ABI_NOTE_TYPE, EVH_ABI_NOTE_NAME, NOTE_MAJOR, NOTE_MINOR};

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
                                     EVH_ABI_MAKE_VERSION(NOTE_MAJOR, NOTE_MINOR),
                                     "note_ctor_marker",
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
