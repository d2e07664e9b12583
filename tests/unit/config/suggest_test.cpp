// Tests of did-you-mean suggestions.
#include "config/suggest.h"

#include <gtest/gtest.h>

namespace evh::config {
namespace {

class SuggestTest : public ::testing::Test {
 protected:
  const std::vector<std::string> keys_{"host", "port", "db", "username", "password", "connect_timeout_ms"};
};

TEST_F(SuggestTest, SwappedLettersCountAsOneEdit) {
  EXPECT_EQ(closestMatch("prot", keys_), "port");
  EXPECT_EQ(closestMatch("hsot", keys_), "host");
}

TEST_F(SuggestTest, IgnoresCase) { EXPECT_EQ(closestMatch("Port", keys_), "port"); }

TEST_F(SuggestTest, AllowsMoreEditsForLongerWords) {
  EXPECT_EQ(closestMatch("passwrd", keys_), "password");
  EXPECT_EQ(closestMatch("conect_timout", keys_), std::nullopt);  // 5 edits
  EXPECT_EQ(closestMatch("conect_timeout_s", keys_), "connect_timeout_ms");
}

TEST_F(SuggestTest, SuggestsNothingForShortUnrelatedWords) {
  EXPECT_EQ(closestMatch("x", keys_), std::nullopt);
  EXPECT_EQ(closestMatch("colour", keys_), std::nullopt);
}

TEST_F(SuggestTest, SuggestsNothingWithoutCandidates) { EXPECT_EQ(closestMatch("port", {}), std::nullopt); }

}  // namespace
}  // namespace evh::config
