// The product plugin's text helpers, compiled in: JSON strings, ISO-8601
// times (with the per-thread cache of the last seconds) and key=value log
// values.
#include "../../../plugins/product/product_text.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace product {
namespace {

// appendJsonString's text for s alone.
std::string productTextJsonString(std::string_view s) {
  std::string out;
  appendJsonString(out, s);
  return out;
}

TEST(ProductText, IsoUtcWritesMillisecondsAndReusesTheSecondOnlyForTheSameSecond) {
  EXPECT_EQ(isoUtc(1705314600000), "2024-01-15T10:30:00.000Z");
  EXPECT_EQ(isoUtc(1705314600007), "2024-01-15T10:30:00.007Z");  // the same second again
  EXPECT_EQ(isoUtc(1705314600999), "2024-01-15T10:30:00.999Z");
  EXPECT_EQ(isoUtc(1705314601000), "2024-01-15T10:30:01.000Z");  // the next one
  EXPECT_EQ(isoUtc(1705314600040), "2024-01-15T10:30:00.040Z");  // and back
  EXPECT_EQ(isoUtc(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(isoUtc(-1), "1969-12-31T23:59:59.999Z");  // floor, not truncation
  EXPECT_EQ(isoUtc(951782400123), "2000-02-29T00:00:00.123Z");
  // Two seconds are kept: taking turns between three, each is still right.
  for (int round = 0; round < 3; ++round) {
    EXPECT_EQ(isoUtc(1705314600001), "2024-01-15T10:30:00.001Z");
    EXPECT_EQ(isoUtc(1705314659002), "2024-01-15T10:30:59.002Z");
    EXPECT_EQ(isoUtc(1705314600003), "2024-01-15T10:30:00.003Z");
    EXPECT_EQ(isoUtc(1705401000004), "2024-01-16T10:30:00.004Z");
  }
}

TEST(ProductText, LogValuesAreBareOnlyWhenUnambiguous) {
  EXPECT_EQ(logValue("p-1"), "p-1");
  EXPECT_EQ(logValue("a b"), "\"a b\"");
  EXPECT_EQ(logQuoted("x\"y"), "\"x\\\"y\"");
  EXPECT_EQ(logQuoted("a\nb\r\tc\x01\x7f\\"), R"("a\nb\r\tc\x01\x7f\\")");
  EXPECT_EQ(logValue("k=v"), R"("k=v")");
  EXPECT_EQ(logValue(""), R"("")");
  // Appended to a line as it is being built, the same.
  std::string line = "product created productId=";
  appendLogValue(line, "p 1");
  appendLogQuoted(line, "\x1b[0m");
  EXPECT_EQ(line, R"(product created productId="p 1""\x1b[0m")");
}

// appendJsonString's plain path (nothing to escape, quoted as is) and its
// nlohmann path write what nlohmann's dump writes, for any bytes.
TEST(ProductText, JsonStringsAreWhatNlohmannWrites) {
  auto nlohmannOf = [](const std::string& s) {
    return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  EXPECT_EQ(productTextJsonString("prod-00001234"), "\"prod-00001234\"");
  EXPECT_EQ(productTextJsonString(""), "\"\"");
  for (const std::string& s :
       std::vector<std::string>{"Mug \"Deluxe\"", "back\\slash", "tab\there", "caf\xc3\xa9", "bad \xff byte", "del\x7f",
                                std::string("nul\0in", 6), "/slash/"}) {
    EXPECT_EQ(productTextJsonString(s), nlohmannOf(s)) << s;
  }
  std::mt19937 rng(20261207);
  for (int round = 0; round < 5000; ++round) {
    std::string s(rng() % 24, ' ');
    const unsigned top = round % 2 == 0 ? 0x80 : 0x100;  // half of them ASCII only
    for (auto& c : s) {
      c = static_cast<char>(rng() % top);
    }
    ASSERT_EQ(productTextJsonString(s), nlohmannOf(s)) << "round " << round;
  }
}

}  // namespace
}  // namespace product
