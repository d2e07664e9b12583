// Tests of evhctl dlq's reading of dead-letter entries (cli/dlq_entry.h).
#include "cli/dlq_entry.h"

#include <gtest/gtest.h>

#include <string>

namespace evh::cli::dlq {
namespace {

// The entry docs/dlq.md shows.
const char* const kEntry =
    R"({"id":"dlq-1764171234567-42","reason":"exhausted","eventId":"evt-1","eventType":"PRODUCT_CREATED",)"
    R"("correlationId":"req-1","channel":"jollyjet:events:product","redisChannel":"dev:jollyjet:events:product",)"
    R"("plugin":"product","error":{"name":"exhausted","message":"redis down"},"attempts":3,"retryCount":2,)"
    R"("timestamp":"2026-11-26T18:00:03.010Z","originalEvent":{"eventId":"evt-1","b":1,"a":2}})";

class DlqEntryTest : public ::testing::Test {
 protected:
  static Entry parsed(const std::string& text) {
    std::optional<Entry> e = parseEntry(text);
    EXPECT_TRUE(e.has_value()) << text;
    return e ? *e : Entry{};
  }
  static std::string nested(size_t levels) {
    return R"({"redisChannel":"dev:x","originalEvent":)" + std::string(levels, '[') + std::string(levels, ']') + "}";
  }
};

TEST_F(DlqEntryTest, ReadsTheDocumentedEntry) {
  const Entry e = parsed(kEntry);
  EXPECT_EQ(e.text, kEntry);
  EXPECT_EQ(listRow(e),
            (std::vector<std::string>{"2026-11-26T18:00:03.010Z", "evt-1", "PRODUCT_CREATED", "product", "exhausted"}));
  EXPECT_TRUE(matches(e, "evt-1"));
  EXPECT_TRUE(matches(e, "dlq-1764171234567-42"));
  EXPECT_FALSE(matches(e, "evt-2"));
  EXPECT_EQ(replayLabel(e), "evt-1 PRODUCT_CREATED (exhausted)");
  const ReplayPlan plan = replayPlan(e, "prod:");
  EXPECT_EQ(plan.error, "");
  EXPECT_EQ(plan.channel, "dev:jollyjet:events:product");
  EXPECT_EQ(plan.message, R"({"eventId":"evt-1","b":1,"a":2})");  // key order kept
}

TEST_F(DlqEntryTest, ReplaysRawTextOnThePrefixedChannel) {
  const Entry e = parsed(R"({"id":"dlq-9","eventId":"","raw":"{not json","channel":"c","reason":"invalid"})");
  EXPECT_EQ(replayLabel(e), "dlq-9 - (invalid)");
  const ReplayPlan plan = replayPlan(e, "dev:");
  EXPECT_EQ(plan.channel, "dev:c");
  EXPECT_EQ(plan.message, "{not json");
}

TEST_F(DlqEntryTest, SaysWhyAnEntryCannotBeReplayed) {
  EXPECT_EQ(replayPlan(parsed(R"({"eventId":"e","channel":"c"})"), "dev:").error,
            "the entry has neither originalEvent nor raw; kept");
  EXPECT_EQ(replayPlan(parsed(R"({"eventId":"e","raw":"x"})"), "dev:").error,
            "the entry has neither redisChannel nor channel; kept");
}

TEST_F(DlqEntryTest, FieldsOfAnyTypeAreText) {
  const Entry e = parsed(R"({"eventId":12,"eventType":["a"],"plugin":null})");
  EXPECT_EQ(field(e.json, "eventId"), "12");
  EXPECT_EQ(field(e.json, "eventType"), R"(["a"])");
  EXPECT_EQ(field(e.json, "plugin"), "");
  EXPECT_EQ(field(e.json, "absent"), "");
}

TEST_F(DlqEntryTest, RefusesWhatIsNotAnObject) {
  EXPECT_FALSE(parseEntry("").has_value());
  EXPECT_FALSE(parseEntry("[1]").has_value());
  EXPECT_FALSE(parseEntry(R"({"a":)").has_value());
}

// Found by fuzzing (tests/fuzz/corpus/dlq_entry/regression-deep-nesting.json):
// an element nested 100,000 deep overflowed evhctl's stack in the JSON
// parser. It is now corrupt, like any element that is not an entry, while
// nesting as deep as an event evhost accepts is still read.
TEST_F(DlqEntryTest, RefusesNestingDeeperThanAnyEntry) {
  EXPECT_TRUE(parseEntry(nested(kMaxEntryDepth - 1)).has_value());
  EXPECT_FALSE(parseEntry(nested(kMaxEntryDepth)).has_value());
  EXPECT_FALSE(parseEntry(nested(200000)).has_value());
  // Brackets inside strings are text, not nesting.
  const std::string brackets = R"({"raw":")" + std::string(5000, '[') + R"(","channel":"c"})";
  EXPECT_TRUE(parseEntry(brackets).has_value());
}

}  // namespace
}  // namespace evh::cli::dlq
