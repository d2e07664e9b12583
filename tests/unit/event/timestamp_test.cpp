// Tests of the RFC 3339 timestamp parser and the calendar arithmetic under it.
#include "event/timestamp.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string_view>

namespace evh::event {
namespace {

static_assert(daysFromCivil(1970, 1, 1) == 0);
static_assert(daysFromCivil(1969, 12, 31) == -1);
static_assert(daysFromCivil(2000, 3, 1) == 11017);
static_assert(daysFromCivil(0, 1, 1) == -719528);

class Rfc3339Test : public ::testing::Test {
 protected:
  static std::optional<int64_t> parse(std::string_view text) {
    int64_t ms = -12345;
    if (!parseRfc3339(text, ms)) {
      EXPECT_EQ(ms, -12345) << "output must be untouched on failure";
      return std::nullopt;
    }
    return ms;
  }
};

TEST_F(Rfc3339Test, ParsesDateToJsonOutput) {
  EXPECT_EQ(parse("2024-01-15T10:30:00.000Z"), 1705314600000);
  EXPECT_EQ(parse("2024-01-15T10:30:00.123Z"), 1705314600123);
}

TEST_F(Rfc3339Test, ParsesWithoutFraction) {
  EXPECT_EQ(parse("2024-01-15T10:30:00Z"), 1705314600000);
  EXPECT_EQ(parse("1970-01-01T00:00:00Z"), 0);
}

TEST_F(Rfc3339Test, AcceptsOneToNineFractionDigitsTruncatingToMilliseconds) {
  EXPECT_EQ(parse("1970-01-01T00:00:00.5Z"), 500);
  EXPECT_EQ(parse("1970-01-01T00:00:00.05Z"), 50);
  EXPECT_EQ(parse("1970-01-01T00:00:00.9999Z"), 999);
  EXPECT_EQ(parse("1970-01-01T00:00:00.123456789Z"), 123);
  EXPECT_EQ(parse("1970-01-01T00:00:00.1234567890Z"), std::nullopt);
  EXPECT_EQ(parse("1970-01-01T00:00:00.Z"), std::nullopt);
}

TEST_F(Rfc3339Test, AppliesOffsets) {
  EXPECT_EQ(parse("2024-01-15T10:30:00+02:00"), 1705314600000 - 2 * 3600000);
  EXPECT_EQ(parse("2024-01-15T10:30:00-05:30"), 1705314600000 + 5 * 3600000 + 30 * 60000);
  EXPECT_EQ(parse("2024-01-15T10:30:00.000+00:00"), 1705314600000);
  EXPECT_EQ(parse("2024-01-15T10:30:00-00:00"), 1705314600000);
  EXPECT_EQ(parse("2024-01-15T10:30:00+23:59"), 1705314600000 - 23 * 3600000 - 59 * 60000);
}

TEST_F(Rfc3339Test, AcceptsLowerCaseSeparators) { EXPECT_EQ(parse("2024-01-15t10:30:00z"), 1705314600000); }

TEST_F(Rfc3339Test, HandlesLeapDays) {
  EXPECT_EQ(parse("2024-02-29T00:00:00Z"), 1709164800000);
  EXPECT_TRUE(parse("2000-02-29T00:00:00Z").has_value());  // divisible by 400
  EXPECT_EQ(parse("2023-02-29T00:00:00Z"), std::nullopt);
  EXPECT_EQ(parse("1900-02-29T00:00:00Z"), std::nullopt);  // divisible by 100 only
  EXPECT_EQ(parse("2024-03-01T00:00:00Z"), 1709164800000 + 86400000);
}

TEST_F(Rfc3339Test, RejectsOutOfRangeFields) {
  EXPECT_EQ(parse("2024-00-15T10:30:00Z"), std::nullopt);
  EXPECT_EQ(parse("2024-13-15T10:30:00Z"), std::nullopt);
  EXPECT_EQ(parse("2024-01-00T10:30:00Z"), std::nullopt);
  EXPECT_EQ(parse("2024-01-32T10:30:00Z"), std::nullopt);
  EXPECT_EQ(parse("2024-04-31T10:30:00Z"), std::nullopt);
  EXPECT_EQ(parse("2024-01-15T24:00:00Z"), std::nullopt);
  EXPECT_EQ(parse("2024-01-15T10:60:00Z"), std::nullopt);
  EXPECT_EQ(parse("2024-01-15T10:30:61Z"), std::nullopt);
  EXPECT_EQ(parse("2024-01-15T10:30:00+24:00"), std::nullopt);
  EXPECT_EQ(parse("2024-01-15T10:30:00+02:60"), std::nullopt);
}

TEST_F(Rfc3339Test, AcceptsLeapSecond) { EXPECT_EQ(parse("2016-12-31T23:59:60Z"), parse("2017-01-01T00:00:00Z")); }

TEST_F(Rfc3339Test, RejectsMalformedText) {
  for (const std::string_view text :
       {"", "yesterday", "2024-01-15", "2024-01-15T10:30:00", "2024-01-15 10:30:00Z", "2024-1-15T10:30:00Z",
        "2024-01-15T10:30Z", "2024-01-15T10:30:00ZZ", "2024-01-15T10:30:00+0200", "2024-01-15T10:30:00+02",
        "+02024-01-15T10:30:00Z", " 2024-01-15T10:30:00Z", "2024-01-15T10:30:00Z ", "2024-01-15T10:30:0aZ",
        "1705314600000"}) {
    EXPECT_EQ(parse(text), std::nullopt) << text;
  }
}

TEST_F(Rfc3339Test, CoversTheWholeFourDigitYearRange) {
  EXPECT_EQ(parse("0000-01-01T00:00:00Z"), -62167219200000);
  EXPECT_EQ(parse("9999-12-31T23:59:59.999Z"), 253402300799999);
  EXPECT_EQ(parse("1969-12-31T23:59:59.999Z"), -1);
}

}  // namespace
}  // namespace evh::event
