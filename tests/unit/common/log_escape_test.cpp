// Control characters in text log lines are escaped: no logged value can end a line and start a forged one.
#include "common/log_escape.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "common/log.h"

namespace evh::log {
namespace {

std::string escaped(std::string_view text) {
  std::string out;
  appendEscaped(text, out);
  return out;
}

TEST(LogEscapeTest, TextWithoutControlCharactersIsCopiedAsIs) {
  EXPECT_EQ(escaped(""), "");
  EXPECT_EQ(escaped("eventId=e-1 \"quoted\" back\\slash {\"a\":[1]}"),
            "eventId=e-1 \"quoted\" back\\slash {\"a\":[1]}");
  // Non-ASCII text, including characters whose UTF-8 starts with 0xC2 (the
  // C1 controls' lead byte): £ (C2 A3), a no-break space (C2 A0).
  EXPECT_EQ(escaped("caf\xC3\xA9 \xC2\xA3"
                    "5 a\xC2\xA0"
                    "b \xE2\x82\xAC"),
            "caf\xC3\xA9 \xC2\xA3"
            "5 a\xC2\xA0"
            "b \xE2\x82\xAC");
  // Invalid UTF-8 is not a control character: copied too.
  EXPECT_EQ(escaped("\xFF\xC2"), "\xFF\xC2");
}

TEST(LogEscapeTest, LineBreaksAndTabsGetTheirShortEscapes) {
  EXPECT_EQ(escaped("o-9\n2026-12-02T00:00:00.000 critical [evhost] forged"),
            "o-9\\n2026-12-02T00:00:00.000 critical [evhost] forged");
  EXPECT_EQ(escaped("a\r\nb\tc"), "a\\r\\nb\\tc");
  EXPECT_EQ(escaped("\n"), "\\n");
}

TEST(LogEscapeTest, OtherControlCharactersBecomeUnicodeEscapes) {
  EXPECT_EQ(escaped("\x1b[2J\x1b]0;title\x07"), "\\u001b[2J\\u001b]0;title\\u0007");
  EXPECT_EQ(escaped(std::string_view("a\0b", 3)), "a\\u0000b");
  EXPECT_EQ(escaped("\x1f\x7f"), "\\u001f\\u007f");
  // C1 controls in UTF-8: U+0085 (next line), U+009B (CSI).
  EXPECT_EQ(escaped("x\xC2\x85y\xC2\x9B"
                    "31m"),
            "x\\u0085y\\u009b31m");
  EXPECT_EQ(escaped("\xC2\x80\xC2\x9F"), "\\u0080\\u009f");
}

// The text format as installed: one line per message, whatever it holds.
TEST(LogEscapeTest, TheTextFormatWritesOneLinePerMessage) {
  const auto formatter = makeFormatter(Format::Text);
  const spdlog::details::log_msg msg("plugin", spdlog::level::info,
                                     "orderId=o-9\n2026-12-02T00:00:00.000 critical [evhost] forged\x1b[0m");
  spdlog::memory_buf_t buf;
  formatter->format(msg, buf);
  const std::string line(buf.data(), buf.size());
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
  EXPECT_NE(line.find(" [plugin] orderId=o-9\\n2026-12-02T00:00:00.000 critical [evhost] forged\\u001b[0m\n"),
            std::string::npos)
      << line;
}

}  // namespace
}  // namespace evh::log
