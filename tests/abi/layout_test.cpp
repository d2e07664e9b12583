// The v1 ABI, pinned: any change to these offsets or sizes breaks plugins
// already built, and needs a new major version (or an append + minor bump).
#include <evh/plugin.h>
#include <evh/plugin.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <type_traits>

#if UINTPTR_MAX == 0xFFFFFFFFFFFFFFFFu
// LP64 (x86_64, aarch64): the platforms evhost ships for.
static_assert(sizeof(evh_str) == 16 && offsetof(evh_str, len) == 8);

static_assert(offsetof(evh_plugin_desc, struct_size) == 0);
static_assert(offsetof(evh_plugin_desc, abi_version) == 4);
static_assert(offsetof(evh_plugin_desc, name) == 8);
static_assert(offsetof(evh_plugin_desc, version) == 16);
static_assert(offsetof(evh_plugin_desc, description) == 24);
static_assert(offsetof(evh_plugin_desc, flags) == 32);
static_assert(offsetof(evh_plugin_desc, max_concurrency) == 36);
static_assert(offsetof(evh_plugin_desc, init) == 40);
static_assert(offsetof(evh_plugin_desc, handle) == 48);
static_assert(offsetof(evh_plugin_desc, shutdown) == 56);
// ABI 1.1
static_assert(offsetof(evh_plugin_desc, health) == 64);
// ABI 1.2 appended no field; 1.3
static_assert(offsetof(evh_plugin_desc, validate_config) == 72);
static_assert(sizeof(evh_plugin_desc) == 80);

static_assert(offsetof(evh_host_api, struct_size) == 0);
static_assert(offsetof(evh_host_api, abi_version) == 4);
static_assert(offsetof(evh_host_api, log) == 8);
static_assert(offsetof(evh_host_api, log_enabled) == 16);
static_assert(offsetof(evh_host_api, set_error) == 24);
static_assert(offsetof(evh_host_api, call_set_error) == 32);
static_assert(offsetof(evh_host_api, complete) == 40);
static_assert(offsetof(evh_host_api, publish) == 48);
static_assert(offsetof(evh_host_api, redis_command) == 56);
static_assert(offsetof(evh_host_api, env_prefix) == 64);
static_assert(offsetof(evh_host_api, metric_register) == 72);
static_assert(offsetof(evh_host_api, metric_add) == 80);
static_assert(offsetof(evh_host_api, metric_set) == 88);
static_assert(offsetof(evh_host_api, post) == 96);
// ABI 1.1
static_assert(offsetof(evh_host_api, status_text) == 104);
static_assert(offsetof(evh_host_api, metric_register_spec) == 112);
static_assert(offsetof(evh_host_api, metric_observe) == 120);
static_assert(sizeof(evh_host_api) == 128);

static_assert(sizeof(evh_metric_label) == 32 && offsetof(evh_metric_label, value) == 16);
static_assert(offsetof(evh_metric_spec, struct_size) == 0);
static_assert(offsetof(evh_metric_spec, kind) == 4);
static_assert(offsetof(evh_metric_spec, name) == 8);
static_assert(offsetof(evh_metric_spec, help) == 24);
static_assert(offsetof(evh_metric_spec, labels) == 40);
static_assert(offsetof(evh_metric_spec, label_count) == 48);
static_assert(offsetof(evh_metric_spec, bucket_count) == 52);
static_assert(offsetof(evh_metric_spec, buckets) == 56);
static_assert(sizeof(evh_metric_spec) == 64);
static_assert(EVH_METRIC_HISTOGRAM == 3);
static_assert(EVH_HEALTH_OK == 0 && EVH_HEALTH_DEGRADED == 1 && EVH_HEALTH_DOWN == 2);

static_assert(offsetof(evh_event, struct_size) == 0);
static_assert(offsetof(evh_event, attempt) == 4);
static_assert(offsetof(evh_event, max_attempts) == 8);
static_assert(offsetof(evh_event, flags) == 12);
static_assert(offsetof(evh_event, channel) == 16);
static_assert(offsetof(evh_event, redis_channel) == 32);
static_assert(offsetof(evh_event, event_type) == 48);
static_assert(offsetof(evh_event, event_id) == 64);
static_assert(offsetof(evh_event, correlation_id) == 80);
static_assert(offsetof(evh_event, timestamp) == 96);
static_assert(offsetof(evh_event, timestamp_ms) == 112);
static_assert(offsetof(evh_event, payload) == 120);
static_assert(offsetof(evh_event, envelope) == 136);
static_assert(offsetof(evh_event, raw) == 152);
static_assert(offsetof(evh_event, delivery_id) == 168);
static_assert(offsetof(evh_event, idempotency_key) == 184);
static_assert(offsetof(evh_event, idempotency_ttl_ms) == 200);
static_assert(sizeof(evh_event) == 208);

static_assert(offsetof(evh_reply, struct_size) == 0);
static_assert(offsetof(evh_reply, type) == 4);
static_assert(offsetof(evh_reply, integer) == 8);
static_assert(offsetof(evh_reply, str) == 16);
static_assert(offsetof(evh_reply, elements) == 32);
static_assert(offsetof(evh_reply, element) == 40);
static_assert(sizeof(evh_reply) == 48);
#endif

// Every ABI struct is plain data a C compiler lays out the same way.
static_assert(std::is_standard_layout_v<evh_plugin_desc> && std::is_trivial_v<evh_plugin_desc>);
static_assert(std::is_standard_layout_v<evh_host_api> && std::is_trivial_v<evh_host_api>);
static_assert(std::is_standard_layout_v<evh_event> && std::is_trivial_v<evh_event>);
static_assert(std::is_standard_layout_v<evh_reply> && std::is_trivial_v<evh_reply>);
static_assert(std::is_same_v<evh_status, int32_t>);

TEST(AbiLayout, VersionMacrosRoundTrip) {
  EXPECT_EQ(EVH_ABI_VERSION_MAJOR(EVH_ABI_MAKE_VERSION(2, 7)), 2U);
  EXPECT_EQ(EVH_ABI_VERSION_MINOR(EVH_ABI_MAKE_VERSION(2, 7)), 7U);
  EXPECT_EQ(EVH_ABI_VERSION_MAJOR(EVH_ABI_VERSION), static_cast<uint32_t>(EVH_ABI_MAJOR));
}

TEST(AbiLayout, HasFieldRespectsStructSize) {
  evh_event ev{};
  ev.struct_size = offsetof(evh_event, delivery_id);  // as if built before delivery_id existed
  EXPECT_TRUE(EVH_HAS_FIELD(&ev, evh_event, raw));
  EXPECT_FALSE(EVH_HAS_FIELD(&ev, evh_event, delivery_id));
  ev.struct_size = sizeof(evh_event);
  EXPECT_TRUE(EVH_HAS_FIELD(&ev, evh_event, delivery_id));
}

static_assert(std::is_same_v<evh_config_error_fn, void (*)(void*, evh_str, evh_str)>);
static_assert(EVH_ABI_MAJOR == 1 && EVH_ABI_MINOR == 3);

TEST(AbiLayout, ADescriptorOfAnOlderMinorDoesNotHaveValidateConfig) {
  evh_plugin_desc d{};
  d.struct_size = offsetof(evh_plugin_desc, validate_config);  // as compiled against 1.1 or 1.2
  EXPECT_TRUE(EVH_HAS_FIELD(&d, evh_plugin_desc, health));
  EXPECT_FALSE(EVH_HAS_FIELD(&d, evh_plugin_desc, validate_config));
  d.struct_size = sizeof(evh_plugin_desc);
  EXPECT_TRUE(EVH_HAS_FIELD(&d, evh_plugin_desc, validate_config));
}

TEST(AbiLayout, CppStrIsLayoutCompatible) {
  std::string_view s = "hello";
  evh_str c = evh::str(s);
  EXPECT_EQ(c.ptr, s.data());
  EXPECT_EQ(c.len, s.size());
  EXPECT_EQ(evh::view(c), s);
  EXPECT_TRUE(evh::view(evh_str{nullptr, 0}).empty());
}
