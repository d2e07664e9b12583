// Tests of ${VAR} / ${VAR:-default} / $$ expansion.
#include "config/expand.h"

#include <gtest/gtest.h>

#include <map>

namespace evh::config {
namespace {

class ExpandTest : public ::testing::Test {
 protected:
  Expansion expand(const std::string& text) {
    return expandVariables(text, [this](const std::string& name) -> std::optional<std::string> {
      const auto it = env_.find(name);
      if (it == env_.end()) {
        return std::nullopt;
      }
      return it->second;
    });
  }

  std::map<std::string, std::string> env_{{"HOST", "redis.local"}, {"EMPTY", ""}, {"PORT", "6380"}};
};

TEST_F(ExpandTest, LeavesPlainTextAlone) {
  const Expansion e = expand("no variables here");
  EXPECT_TRUE(e.errors.empty());
  EXPECT_EQ(e.value, "no variables here");
}

TEST_F(ExpandTest, SubstitutesSetVariable) {
  const Expansion e = expand("${HOST}:${PORT}");
  EXPECT_TRUE(e.errors.empty());
  EXPECT_EQ(e.value, "redis.local:6380");
}

// What may be a secret in the value: what came from the environment, not
// the text or the defaults written in the file (nor an empty value).
TEST_F(ExpandTest, ListsTheValuesTakenFromTheEnvironment) {
  const Expansion e = expand("${HOST}:${PORT:-1}/${MISSING:-${EMPTY:-fallback}}${EMPTY}$$");
  EXPECT_EQ(e.value, "redis.local:6380/fallback$");
  EXPECT_EQ(e.from_environment, (std::vector<std::string>{"redis.local", "6380"}));
  EXPECT_TRUE(expand("plain").from_environment.empty());
}

TEST_F(ExpandTest, UnsetVariableWithoutDefaultIsAnError) {
  const Expansion e = expand("x${MISSING}y");
  ASSERT_EQ(e.errors.size(), 1U);
  EXPECT_EQ(e.errors[0], "variable \"MISSING\" is not set and has no default");
}

TEST_F(ExpandTest, ReportsEveryUnsetVariable) {
  const Expansion e = expand("${A}-${B}");
  ASSERT_EQ(e.errors.size(), 2U);
  EXPECT_NE(e.errors[0].find("\"A\""), std::string::npos);
  EXPECT_NE(e.errors[1].find("\"B\""), std::string::npos);
}

TEST_F(ExpandTest, SetButEmptyVariableWithoutDefaultIsEmpty) {
  const Expansion e = expand("[${EMPTY}]");
  EXPECT_TRUE(e.errors.empty());
  EXPECT_EQ(e.value, "[]");
}

TEST_F(ExpandTest, UsesDefaultWhenUnset) {
  const Expansion e = expand("${REDIS_PORT:-6379}");
  EXPECT_TRUE(e.errors.empty());
  EXPECT_EQ(e.value, "6379");
}

TEST_F(ExpandTest, UsesDefaultWhenSetButEmpty) {
  const Expansion e = expand("${EMPTY:-fallback}");
  EXPECT_TRUE(e.errors.empty());
  EXPECT_EQ(e.value, "fallback");
}

TEST_F(ExpandTest, SetVariableOverridesDefault) {
  const Expansion e = expand("${PORT:-6379}");
  EXPECT_TRUE(e.errors.empty());
  EXPECT_EQ(e.value, "6380");
}

TEST_F(ExpandTest, DefaultMayBeEmpty) {
  const Expansion e = expand("a${MISSING:-}b");
  EXPECT_TRUE(e.errors.empty());
  EXPECT_EQ(e.value, "ab");
}

TEST_F(ExpandTest, DefaultMayHoldReferences) {
  const Expansion e = expand("${URL:-redis://${HOST:-localhost}:${P:-6379}}");
  EXPECT_TRUE(e.errors.empty());
  EXPECT_EQ(e.value, "redis://redis.local:6379");
}

TEST_F(ExpandTest, UnusedDefaultDoesNotReportItsUnsetVariables) {
  const Expansion e = expand("${HOST:-${MISSING}}");
  EXPECT_TRUE(e.errors.empty());
  EXPECT_EQ(e.value, "redis.local");
}

TEST_F(ExpandTest, UsedDefaultReportsItsUnsetVariables) {
  const Expansion e = expand("${NOPE:-${MISSING}}");
  ASSERT_EQ(e.errors.size(), 1U);
  EXPECT_NE(e.errors[0].find("\"MISSING\""), std::string::npos);
}

TEST_F(ExpandTest, DoubleDollarIsALiteralDollar) {
  const Expansion e = expand("pa$$word $${HOST}");
  EXPECT_TRUE(e.errors.empty());
  EXPECT_EQ(e.value, "pa$word ${HOST}");
}

TEST_F(ExpandTest, LoneDollarIsKept) {
  const Expansion e = expand("$HOME costs $5$");
  EXPECT_TRUE(e.errors.empty());
  EXPECT_EQ(e.value, "$HOME costs $5$");
}

TEST_F(ExpandTest, UnterminatedReferenceIsMalformed) {
  const Expansion e = expand("${HOST");
  ASSERT_EQ(e.errors.size(), 1U);
  EXPECT_EQ(e.errors[0], "malformed variable reference \"${HOST\": missing closing \"}\"");
}

TEST_F(ExpandTest, UnterminatedDefaultIsMalformed) {
  const Expansion e = expand("${HOST:-x");
  ASSERT_EQ(e.errors.size(), 1U);
  EXPECT_EQ(e.errors[0], "malformed variable reference \"${HOST:-x\": missing closing \"}\"");
}

TEST_F(ExpandTest, EmptyNameIsMalformed) {
  const Expansion e = expand("${}");
  ASSERT_EQ(e.errors.size(), 1U);
  EXPECT_NE(e.errors[0].find("expected a variable name"), std::string::npos);
}

TEST_F(ExpandTest, NameStartingWithDigitIsMalformed) {
  const Expansion e = expand("${1X}");
  ASSERT_EQ(e.errors.size(), 1U);
  EXPECT_NE(e.errors[0].find("\"${1X}\""), std::string::npos);
}

TEST_F(ExpandTest, ShellOnlyOperatorsAreMalformed) {
  const Expansion e = expand("${HOST-x}");
  ASSERT_EQ(e.errors.size(), 1U);
  EXPECT_EQ(e.errors[0],
            "malformed variable reference \"${HOST-x}\": expected \"}\" or \":-\" after the "
            "variable name");
}

TEST_F(ExpandTest, MalformedReferenceIsTheOnlyErrorReported) {
  const Expansion e = expand("${MISSING} ${BAD");
  ASSERT_EQ(e.errors.size(), 1U);
  EXPECT_NE(e.errors[0].find("malformed"), std::string::npos);
  EXPECT_EQ(e.value, "");
}

// Found by fuzzing (tests/fuzz/corpus/config/regression-nested-defaults.yaml):
// each default inside a default was a level of recursion, and 50,000 of them
// overflowed the stack. Now 16 levels are allowed and more is one error.
TEST_F(ExpandTest, NestedDefaultsAreBounded) {
  auto nested = [](size_t levels) {
    std::string text;
    for (size_t i = 0; i < levels; ++i) {
      text += "${MISSING:-";
    }
    text += "x";
    text.append(levels, '}');
    return text;
  };
  const Expansion ok = expand(nested(16));
  EXPECT_TRUE(ok.errors.empty());
  EXPECT_EQ(ok.value, "x");

  const Expansion deep = expand(nested(17));
  ASSERT_EQ(deep.errors.size(), 1U);
  EXPECT_NE(deep.errors[0].find("defaults nested deeper than 16 levels"), std::string::npos) << deep.errors[0];
  EXPECT_EQ(deep.value, "");

  const Expansion huge = expand(nested(200000));
  ASSERT_EQ(huge.errors.size(), 1U);
  EXPECT_NE(huge.errors[0].find("nested deeper"), std::string::npos);
}

}  // namespace
}  // namespace evh::config
