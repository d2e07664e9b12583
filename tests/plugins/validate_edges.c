/* validate_edges: a validate_config that misbehaves, on the bare C ABI. What
 * it does depends on a word in its config text:
 *   "silent_fail"   answers EVH_ERR_INTERNAL without reporting anything
 *   "ok_but_report" reports one problem and answers EVH_OK all the same
 *   "flood"         reports 1,000 problems
 *   "bad_strings"   reports a NULL pointer text with a length, a message with a
 *                   newline and an escape character, and a message of 5,000 bytes
 *   "crash"         stores to address 0x10 (the fatal-signal handler must name it)
 * anything else: valid. init always succeeds (it is never reached with a bad
 * config when the host checks first). */
#include <evh/plugin.h>

#include <stdio.h>
#include <string.h>

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

static evh_str text(const char* s) {
  evh_str out;
  out.ptr = s;
  out.len = strlen(s);
  return out;
}

/* A store to address 0x10, as tests/plugins/scripted.cpp crashes: not
 * UBSan's to report first (volatile: the compiler cannot see it is bad). */
__attribute__((no_sanitize("undefined"))) static void crash(void) {
  static volatile uintptr_t address = 0x10;
  *(volatile int*)address = 1;
}

static evh_status t_validate(evh_str config, evh_config_error_fn report, void* ctx) {
  if (contains(config, "silent_fail")) {
    return EVH_ERR_INTERNAL;
  }
  if (contains(config, "ok_but_report")) {
    report(ctx, text("/mode"), text("reported, then answered OK"));
    return EVH_OK;
  }
  if (contains(config, "flood")) {
    int i;
    for (i = 0; i < 1000; ++i) {
      char where[32];
      snprintf(where, sizeof where, "/item/%d", i);
      report(ctx, text(where), text("one of many"));
    }
    return EVH_ERR_INVALID;
  }
  if (contains(config, "bad_strings")) {
    static char big[5000];
    evh_str null_text;
    memset(big, 'x', sizeof big);
    null_text.ptr = NULL;
    null_text.len = 5;
    report(ctx, null_text, text("the pointer was NULL"));
    report(ctx, text("/mode"), text("line one\nline two \x1b[31mred"));
    report(ctx, text("/mode"), (evh_str){big, sizeof big});
    return EVH_ERR_INVALID;
  }
  if (contains(config, "crash")) {
    crash();
  }
  return EVH_OK;
}

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

static const evh_plugin_desc desc = {.struct_size = sizeof(evh_plugin_desc),
                                     .abi_version = EVH_ABI_VERSION,
                                     .name = "validate_edges",
                                     .version = "1.0",
                                     .init = t_init,
                                     .handle = t_handle,
                                     .validate_config = t_validate};

EVH_PLUGIN_EXPORT const evh_plugin_desc* evh_plugin_entry(uint32_t host_abi_version) {
  (void)host_abi_version;
  return &desc;
}
