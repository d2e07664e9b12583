// What a presence hash says: its keys, the expiry values, who is live and
// what is deleted (app/pubsub_peers.h). The Redis side is in
// tests/integration/pubsub_peers_test.cpp.
#include "app/pubsub_peers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace evh::app {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

TEST(PubsubPeersTest, KeysAreUnderThePrefixAndSeparatePatternsFromChannels) {
  EXPECT_EQ(pubsubPresenceKey("dev:", false, "jollyjet:events:product"),
            "dev:evh:pubsub-consumers:jollyjet:events:product");
  EXPECT_EQ(pubsubPresenceKey("dev:", true, "jollyjet:*"), "dev:evh:pubsub-pattern-consumers:jollyjet:*");
  EXPECT_EQ(pubsubPresenceKey("", false, "a"), "evh:pubsub-consumers:a");
  EXPECT_NE(pubsubPresenceKey("", false, "a*"), pubsubPresenceKey("", true, "a*"));
}

TEST(PubsubPeersTest, ReadsAnExpiryOfDecimalMilliseconds) {
  EXPECT_EQ(parsePresenceExpiry("1700000000000"), 1700000000000u);
  EXPECT_EQ(parsePresenceExpiry("0"), 0u);
  EXPECT_EQ(parsePresenceExpiry("18446744073709551615"), UINT64_MAX);
}

TEST(PubsubPeersTest, RefusesWhatIsNotAnExpiry) {
  for (const char* bad :
       {"", "-1", "+1", " 1", "1 ", "1.5", "1e3", "0x10", "abc", "18446744073709551616", "000000000000000000001"}) {
    EXPECT_EQ(parsePresenceExpiry(bad), std::nullopt) << '"' << bad << '"';
  }
}

TEST(PubsubPeersTest, OthersWhoseTimeHasNotPassedAreLive) {
  const std::vector<std::pair<std::string, std::string>> fields{
      {"me-1", "2000"}, {"vm-2", "2000"}, {"vm-3", "1001"}, {"vm-4", "1000"}, {"vm-5", "10"}};
  const Presence p = presenceOf(fields, "me-1", 1000);
  EXPECT_THAT(p.live, UnorderedElementsAre("vm-2", "vm-3"));
  EXPECT_THAT(p.expired, UnorderedElementsAre("vm-4", "vm-5")) << "at its time, a presence has expired";
}

TEST(PubsubPeersTest, OwnFieldIsNeitherLiveNorDeletedEvenWhenExpired) {
  const Presence p = presenceOf({{"me-1", "5"}}, "me-1", 1000);
  EXPECT_THAT(p.live, IsEmpty());
  EXPECT_THAT(p.expired, IsEmpty());
}

TEST(PubsubPeersTest, AValueThatIsNotATimeIsDeleted) {
  const Presence p = presenceOf({{"vm-2", "soon"}, {"vm-3", ""}}, "me-1", 1000);
  EXPECT_THAT(p.live, IsEmpty());
  EXPECT_THAT(p.expired, ElementsAre("vm-2", "vm-3"));
}

}  // namespace
}  // namespace evh::app
