// The text and JSON line formats (common/log_format.cpp) write what
// spdlog's pattern formatter wrote with their patterns, which stays the
// reference here; and the word-at-a-time escape scans agree with the
// byte-at-a-time rules.
#include "common/log.h"

#include <gtest/gtest.h>
#include <spdlog/pattern_formatter.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/log_escape.h"

namespace evh::log {
namespace {

using LogClock = spdlog::log_clock;

std::string formatLine(spdlog::formatter& f, LogClock::time_point t, spdlog::level::level_enum level,
                       std::string_view name, std::string_view text) {
  const spdlog::details::log_msg msg(t, spdlog::source_loc{}, name, level, text);
  spdlog::memory_buf_t buf;
  f.format(msg, buf);
  return std::string(buf.data(), buf.size());
}

// The times the cases use: on a second, just before the next, and back in
// time (the formatters keep the second's text: it must follow).
std::vector<LogClock::time_point> logTimes() {
  const LogClock::time_point base{std::chrono::seconds(1796688000)};  // 2026-12-08T00:00:00Z
  return {base,
          base + std::chrono::microseconds(1),
          base + std::chrono::milliseconds(999) + std::chrono::microseconds(999),
          base + std::chrono::seconds(1) + std::chrono::milliseconds(7),
          base - std::chrono::seconds(86400 * 40) + std::chrono::microseconds(123456),
          base + std::chrono::seconds(1) + std::chrono::milliseconds(8),
          LogClock::now()};
}

const spdlog::level::level_enum kLogLevels[] = {spdlog::level::trace, spdlog::level::debug, spdlog::level::info,
                                                spdlog::level::warn,  spdlog::level::err,   spdlog::level::critical};

// The JSON escaping the pattern formatter's message flag did, a byte at a time.
std::string jsonEscapedByteByByte(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20) {
      out += {'\\', 'u', '0', '0', kHex[u >> 4], kHex[u & 0xF]};
    } else {
      out += c;
    }
  }
  return out;
}

std::string textEscapedForLog(std::string_view text) {
  std::string out;
  appendEscaped(text, out);
  return out;
}

// Messages with and without what must be escaped, short and long, with the
// special bytes at every offset of an 8-byte word.
std::vector<std::string> logMessages() {
  std::vector<std::string> out = {"",
                                  "x",
                                  "product created productId=p-1 name=\"Desk\" category=office price=99.5",
                                  "caf\xC3\xA9 \xC2\xA3"
                                  "5 \xE2\x82\xAC",
                                  "a \"quoted\" back\\slash",
                                  "line\nbreak\r\ttab \x1b[0m \x7f \xC2\x85 \xC2\xA0",
                                  std::string("nul\0byte", 8)};
  for (const char special : {'\n', '"', '\\', '\x01', '\x7f', '\xC2'}) {
    for (size_t at = 0; at < 17; ++at) {
      std::string s(24, 'a');
      s[at] = special;
      out.push_back(s);
      if (special == '\xC2') {
        s[at + 1] = '\x9B';  // a C1 control
        out.push_back(s);
      }
    }
  }
  return out;
}

TEST(LogFormatTest, TheTextFormatIsThePatternFormattersLine) {
  spdlog::pattern_formatter reference("%Y-%m-%dT%H:%M:%S.%e %-5l [%n] %v");
  const auto ours = makeFormatter(Format::Text);
  for (const auto t : logTimes()) {
    for (const auto level : kLogLevels) {
      for (const auto& text : logMessages()) {
        const std::string want = formatLine(reference, t, level, "plugin", textEscapedForLog(text));
        EXPECT_EQ(formatLine(*ours, t, level, "plugin", text), want);
      }
    }
  }
}

TEST(LogFormatTest, TheJsonFormatIsThePatternFormattersLine) {
  spdlog::pattern_formatter reference(R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","logger":"%n","msg":"%v"})",
                                      spdlog::pattern_time_type::utc);
  const auto ours = makeFormatter(Format::Json);
  for (const auto t : logTimes()) {
    for (const auto level : kLogLevels) {
      for (const auto& text : logMessages()) {
        const std::string want = formatLine(reference, t, level, "evhost", jsonEscapedByteByByte(text));
        EXPECT_EQ(formatLine(*ours, t, level, "evhost", text), want);
      }
    }
  }
}

TEST(LogFormatTest, AClonedFormatterWritesTheSameLines) {
  for (const auto f : {Format::Text, Format::Json}) {
    const auto first = makeFormatter(f);
    const auto clone = first->clone();
    for (const auto t : logTimes()) {
      EXPECT_EQ(formatLine(*clone, t, spdlog::level::warn, "audit", "a\nb"),
                formatLine(*first, t, spdlog::level::warn, "audit", "a\nb"));
    }
  }
}

// The word test against the byte rule: every byte value at every offset of
// a word of plain text, then random words (whose borrows between bytes a
// single special byte would not show).
TEST(LogFormatTest, TheWordScanFindsExactlyTheBytesThatMayNeedEscaping) {
  for (unsigned b = 0; b < 256; ++b) {
    for (unsigned at = 0; at < 8; ++at) {
      unsigned char bytes[8];
      std::memset(bytes, 'a', sizeof bytes);
      bytes[at] = static_cast<unsigned char>(b);
      uint64_t w;
      std::memcpy(&w, bytes, sizeof w);
      EXPECT_EQ(anyMayNeedEscape(w), mayNeedEscape(static_cast<unsigned char>(b))) << b << " at " << at;
    }
  }
  std::mt19937_64 random(20261207);
  for (int i = 0; i < 200000; ++i) {
    const uint64_t w = random();
    unsigned char bytes[8];
    std::memcpy(bytes, &w, sizeof w);
    bool any = false;
    for (unsigned char c : bytes) {
      any = any || mayNeedEscape(c);
    }
    ASSERT_EQ(anyMayNeedEscape(w), any) << std::hex << w;
  }
}

// Random messages through both formats, against the byte-at-a-time escapes.
TEST(LogFormatTest, RandomMessagesAreEscapedAsByteByByte) {
  spdlog::pattern_formatter text_reference("%Y-%m-%dT%H:%M:%S.%e %-5l [%n] %v");
  spdlog::pattern_formatter json_reference(R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","logger":"%n","msg":"%v"})",
                                           spdlog::pattern_time_type::utc);
  const auto text = makeFormatter(Format::Text);
  const auto json = makeFormatter(Format::Json);
  std::mt19937 random(7);
  const LogClock::time_point t = logTimes().front();
  for (int i = 0; i < 3000; ++i) {
    std::string s(random() % 40, ' ');
    for (char& c : s) {
      // Mostly printable, sometimes anything.
      c = static_cast<char>(random() % 8 == 0 ? random() % 256 : 0x20 + random() % 95);
    }
    ASSERT_EQ(formatLine(*text, t, spdlog::level::info, "p", s),
              formatLine(text_reference, t, spdlog::level::info, "p", textEscapedForLog(s)));
    ASSERT_EQ(formatLine(*json, t, spdlog::level::info, "p", s),
              formatLine(json_reference, t, spdlog::level::info, "p", jsonEscapedByteByByte(s)));
  }
}

}  // namespace
}  // namespace evh::log
