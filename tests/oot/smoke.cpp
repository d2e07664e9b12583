// Loads one plugin as evhost does, calls it once, checks it answered OK and
// counted the event in its metric "events_seen". Used by the out-of-tree test.
#include "plugin/registry.h"
#include "support/fake_host.h"

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: evh_plugin_smoke PLUGIN.so\n");
    return 2;
  }
  evh::test::FakeServices services;
  evh::plugin::Registry registry;
  evh::config::Plugin p;
  p.name = "oot";
  p.path = argv[1];
  p.config_json = "{}";
  p.config_dir = ".";
  try {
    registry.load({p}, {}, services, "dev:");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "smoke: refused: %s\n", e.what());
    return 1;
  }
  evh::test::FakeCall call;
  evh_event ev = evh::test::makeEvent("PRODUCT_CREATED", "evt-42");
  evh_status s = registry.find("oot")->handle(ev, call.handle());
  int64_t seen = evh::test::metricValue(*registry.find("oot"), "events_seen");
  if (s != EVH_OK || seen != 1) {
    std::fprintf(stderr, "smoke: handle answered %d, events_seen=%lld\n", s, static_cast<long long>(seen));
    return 1;
  }
  std::printf("ok: %s loaded and called\n", argv[1]);
  return 0;
}
