// The C++ SDK wrapper at the boundary: exceptions become statuses, deferred
// calls complete exactly once.
#include "plugin/registry.h"

#include <evh/plugin.hpp>
#include "support/fake_host.h"

#include <gtest/gtest.h>

namespace evh::plugin {
namespace {

class WrapperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config::Plugin p;
    p.name = "cpp";
    p.path = std::string(EVH_TEST_PLUGIN_DIR) + "/ok_cpp.so";
    p.config_json = "{}";
    p.config_dir = ".";
    registry_.load({p}, {}, services_, "dev:");
    in_ = registry_.find("cpp");
    ASSERT_NE(in_, nullptr);
  }

  evh_status call(const char* type) {
    evh_event ev = test::makeEvent(type);
    return in_->handle(ev, call_.handle());
  }

  test::FakeServices services_;
  Registry registry_;
  Instance* in_ = nullptr;
  test::FakeCall call_;
};

// ABI 1.3: the descriptor has validate_config only when the class has a
// static validateConfig().
TEST_F(WrapperTest, ValidateConfigOnlyWhenTheClassHasOne) {
  EXPECT_EQ(in_->library().validateConfig(), nullptr);
  EXPECT_EQ(in_->library().desc().struct_size, sizeof(evh_plugin_desc));
  EXPECT_NE(Library::open(std::string(EVH_TEST_PLUGIN_DIR) + "/validate_reports.so")->validateConfig(), nullptr);
}

TEST(ConfigErrorsTest, PointersAreEscapedAndTheSummaryNamesEachProblem) {
  EXPECT_EQ(evh::pointerJoin("", "a/b~c"), "/a~1b~0c");
  EXPECT_EQ(evh::pointerJoin("/list", size_t{3}), "/list/3");
  evh::ConfigErrors errors;
  EXPECT_NO_THROW(errors.throwIfAny());
  errors.add("/size", "must be positive");
  errors.add("", "must be a map");
  EXPECT_EQ(errors.size(), 2U);
  EXPECT_EQ(errors.summary(), "config /size: must be positive; config must be a map");
  EXPECT_THROW(errors.throwIfAny(), std::invalid_argument);
}

TEST_F(WrapperTest, DescriptorCarriesStaticMembers) {
  EXPECT_TRUE(in_->blocking());
  EXPECT_EQ(in_->library().desc().max_concurrency, 2U);
  EXPECT_EQ(in_->library().description(), "test plugin in C++");
  EXPECT_EQ(in_->library().version(), "2.0.0");
}

TEST_F(WrapperTest, OkAnswersOk) {
  EXPECT_EQ(call("ANYTHING"), EVH_OK);
  EXPECT_TRUE(call_.error.empty());
}

TEST_F(WrapperTest, ExceptionBecomesRetryWithItsMessage) {
  EXPECT_EQ(call("THROW"), EVH_RETRY);
  EXPECT_EQ(call_.error, "boom");
}

TEST_F(WrapperTest, RejectExceptionBecomesReject) {
  EXPECT_EQ(call("REJECT_EX"), EVH_REJECT);
  EXPECT_EQ(call_.error, "bad payload");
}

TEST_F(WrapperTest, DeferredCallCompletesOnceLater) {
  EXPECT_EQ(call("PENDING"), EVH_PENDING);
  EXPECT_TRUE(call_.completions.empty());
  services_.runPosted();
  ASSERT_EQ(call_.completions.size(), 1U);
  EXPECT_EQ(call_.completions[0].status, EVH_OK);
}

TEST_F(WrapperTest, DroppedCompletionCompletesWithRetry) {
  EXPECT_EQ(call("DROP"), EVH_PENDING);
  ASSERT_EQ(call_.completions.size(), 1U);
  EXPECT_EQ(call_.completions[0].status, EVH_RETRY);
  EXPECT_EQ(call_.completions[0].message, "pending call dropped without completion");
}

TEST_F(WrapperTest, PublishAppliesEnvironmentPrefix) {
  // ok_cpp does not publish; call the table directly as a plugin would.
  const evh_host_api& api = hostApi();
  const char ch[] = "jollyjet:events:notifications";
  const char msg[] = "{}";
  EXPECT_EQ(api.publish(in_->cHandle(), evh_str{ch, sizeof(ch) - 1}, evh_str{msg, 2}, nullptr, nullptr),
            EVH_ERR_UNAVAILABLE);
  ASSERT_EQ(services_.commands.size(), 1U);
  EXPECT_EQ(services_.commands[0], (std::vector<std::string>{"PUBLISH", "dev:jollyjet:events:notifications", "{}"}));
}

TEST_F(WrapperTest, PublishToAShardedChannelSendsSpublish) {
  services_.sharded = {"dev:jollyjet:events:sharded"};
  const evh_host_api& api = hostApi();
  const char sharded[] = "jollyjet:events:sharded";
  const char classic[] = "jollyjet:events:notifications";
  api.publish(in_->cHandle(), evh_str{sharded, sizeof(sharded) - 1}, evh_str{"{}", 2}, nullptr, nullptr);
  api.publish(in_->cHandle(), evh_str{classic, sizeof(classic) - 1}, evh_str{"{}", 2}, nullptr, nullptr);
  ASSERT_EQ(services_.commands.size(), 2U);
  EXPECT_EQ(services_.commands[0], (std::vector<std::string>{"SPUBLISH", "dev:jollyjet:events:sharded", "{}"}));
  EXPECT_EQ(services_.commands[1], (std::vector<std::string>{"PUBLISH", "dev:jollyjet:events:notifications", "{}"}));
}

TEST_F(WrapperTest, MetricNamesAreValidatedAndKindsKept) {
  const evh_host_api& api = hostApi();
  EXPECT_EQ(api.metric_register(in_->cHandle(), evh_str{"Bad-Name", 8}, EVH_METRIC_COUNTER, evh_str{}), nullptr);
  evh_metric* g = api.metric_register(in_->cHandle(), evh_str{"depth", 5}, EVH_METRIC_GAUGE, evh_str{});
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(api.metric_register(in_->cHandle(), evh_str{"depth", 5}, EVH_METRIC_COUNTER, evh_str{}), nullptr);
  api.metric_set(g, 42);
  api.metric_add(g, -2);
  EXPECT_EQ(test::metricValue(*in_, "depth"), 40);
  evh_metric* c = api.metric_register(in_->cHandle(), evh_str{"handled", 7}, EVH_METRIC_COUNTER, evh_str{});
  api.metric_add(c, -5);  // counters never go down
  api.metric_set(c, 0);   // and are never set
  EXPECT_EQ(test::metricValue(*in_, "handled"), 0);
}

TEST_F(WrapperTest, CompleteRefusesANonFinalStatus) {
  EXPECT_EQ(hostApi().complete(call_.handle(), EVH_PENDING, evh_str{}), EVH_ERR_INVALID);
  EXPECT_TRUE(call_.completions.empty());
}

}  // namespace
}  // namespace evh::plugin
