// The dlq plugin and pushes whose reply never came: Redis may have stored
// the entries or not, so the spool asks (LPOS) before pushing them again.
#include "dlq_plugin_fixture.h"

namespace evh::test {
namespace {

// Redis stores an LPUSH but its reply is lost (the connection dropped in
// between): the plugin cannot tell, so it spools the entry -- and before
// pushing it back it asks Redis (LPOS), which has it: stored once, not twice.
// An entry whose push got no reply and that Redis does not have is pushed.
TEST_F(DlqPluginTest, AnEntryStoredJustBeforeItsReplyWasLostIsNotStoredTwice) {
  plugin::Instance& in = load(R"("flush_interval_ms":50)", "test:", true);
  ASSERT_EQ(deadLetter(in, entry(1)), EVH_OK);
  services_.loseReplies("LPUSH", 1);
  ASSERT_EQ(deadLetter(in, entry(2)), EVH_OK) << "spooled: OK";
  EXPECT_EQ(metricValue(in, "spooled"), 1);
  ASSERT_TRUE(eventually([&] { return metricValue(in, "spool_pending") == 0; }));
  EXPECT_THAT(list(), ElementsAre(entry(2), entry(1)));
  EXPECT_EQ(sink_->count("1 spooled dead-letter entry was in " + std::string(kKey) + " already"), 1U);
  EXPECT_EQ(metricValue(in, "flushed"), 0);
  EXPECT_EQ(metricValue(in, "already_stored"), 1);

  // No reply, and Redis did not run it either (the connection dropped
  // before the command went out): asked about, then pushed.
  services_.hold();
  std::thread late([&] {
    eventually([&] { return services_.held() >= 2; });  // the LPUSH and its LTRIM
    services_.release(EVH_ERR_UNAVAILABLE);
  });
  ASSERT_EQ(deadLetter(in, entry(3)), EVH_OK);
  late.join();
  EXPECT_EQ(metricValue(in, "spooled"), 2);
  ASSERT_TRUE(eventually([&] { return metricValue(in, "spool_pending") == 0; }));
  EXPECT_THAT(list(), ElementsAre(entry(3), entry(2), entry(1)));
  EXPECT_EQ(metricValue(in, "flushed"), 1);
}

// A Redis that refuses LPOS (an ACL without +lpos): said once, and the
// uncertain entry is pushed again rather than left in the spool for good --
// at least once, here twice.
TEST_F(DlqPluginTest, WhenRedisRefusesLposTheUncertainEntryIsPushedAgain) {
  plugin::Instance& in = load(R"("flush_interval_ms":50)", "test:", true);
  redis_.command({"ACL", "SETUSER", "default", "-lpos"});
  services_.loseReplies("LPUSH", 1);
  ASSERT_EQ(deadLetter(in, entry(1)), EVH_OK) << "spooled: OK";
  ASSERT_TRUE(eventually([&] { return metricValue(in, "spool_pending") == 0; }));
  EXPECT_THAT(list(), ElementsAre(entry(1), entry(1)));
  EXPECT_EQ(sink_->count("LPOS " + std::string(kKey) + " failed: NOPERM"), 1U);
  EXPECT_EQ(metricValue(in, "flushed"), 1);
  EXPECT_EQ(metricValue(in, "already_stored"), 0);
}

}  // namespace
}  // namespace evh::test
