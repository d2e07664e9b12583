// The product plugin's text helpers, compiled in: ISO-8601 times (with the
// per-thread cache of the last second) and key=value log values.
#include "../../../plugins/product/product_text.h"

#include <gtest/gtest.h>

namespace product {
namespace {

TEST(ProductText, IsoUtcWritesMillisecondsAndReusesTheSecondOnlyForTheSameSecond) {
  EXPECT_EQ(isoUtc(1705314600000), "2024-01-15T10:30:00.000Z");
  EXPECT_EQ(isoUtc(1705314600007), "2024-01-15T10:30:00.007Z");  // the same second again
  EXPECT_EQ(isoUtc(1705314600999), "2024-01-15T10:30:00.999Z");
  EXPECT_EQ(isoUtc(1705314601000), "2024-01-15T10:30:01.000Z");  // the next one
  EXPECT_EQ(isoUtc(1705314600040), "2024-01-15T10:30:00.040Z");  // and back
  EXPECT_EQ(isoUtc(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(isoUtc(-1), "1969-12-31T23:59:59.999Z");  // floor, not truncation
  EXPECT_EQ(isoUtc(951782400123), "2000-02-29T00:00:00.123Z");
}

TEST(ProductText, LogValuesAreBareOnlyWhenUnambiguous) {
  EXPECT_EQ(logValue("p-1"), "p-1");
  EXPECT_EQ(logValue("a b"), "\"a b\"");
  EXPECT_EQ(logQuoted("x\"y"), "\"x\\\"y\"");
}

}  // namespace
}  // namespace product
