// config::maskValues: what a reload's errors and a plugin's config problems
// show of values that came from the environment.
#include "config/mask.h"

#include <gtest/gtest.h>

namespace evh::config {
namespace {

TEST(MaskValues, MasksEveryOccurrenceLongestFirst) {
  EXPECT_EQ(maskValues("got \"hunter2-secret\" (from \"${PW}\"), again hunter2-secret", {"hunter2-secret"}),
            "got \"***\" (from \"${PW}\"), again ***");
  // A value that contains another is masked whole.
  EXPECT_EQ(maskValues("abcd-efgh", {"abcd", "abcd-efgh"}), "***");
}

TEST(MaskValues, ShortValuesOnlyAsWholeWords) {
  EXPECT_EQ(maskValues("expected 1..10, got \"7\"", {"7"}), "expected 1..10, got \"***\"");
  EXPECT_EQ(maskValues("port 6379", {"7"}), "port 6379");
}

TEST(MaskValues, AlsoInItsJsonEscapedForm) {
  EXPECT_EQ(maskValues(R"(got "a\"b-long")", {"a\"b-long"}), R"(got "***")");
}

TEST(MaskValues, EmptyValuesAndNoValuesChangeNothing) {
  EXPECT_EQ(maskValues("text", {""}), "text");
  EXPECT_EQ(maskValues("text", {}), "text");
}

}  // namespace
}  // namespace evh::config
