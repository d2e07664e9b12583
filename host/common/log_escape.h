// Escaping control characters in text log lines, so that no logged value -- an event field, a plugin's message --
// can end the line and start a forged one, or send a terminal escape sequence.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace evh::log {

// Whether `byte` may need escaping: C0 controls, DEL, and 0xC2, which leads
// the UTF-8 form of the C1 controls U+0080..U+009F (and of harmless
// characters such as U+00A0..U+00BF, which the slow path lets through).
constexpr bool mayNeedEscape(unsigned char byte) noexcept { return byte < 0x20U || byte == 0x7FU || byte == 0xC2U; }

// Word tests on 8 bytes at a time (`w` read with memcpy), exact for
// whether any byte matches, not for which: the classic "has a byte less
// than n" (n <= 0x80) and "has a zero byte" applied to w ^ c. Why: a log
// line is scanned a word at a time instead of a byte at a time (2,000
// instructions a line of ~170 bytes before, 2026-12-07).
constexpr uint64_t kWordOnes = 0x0101010101010101ULL;
constexpr uint64_t kWordHighs = 0x8080808080808080ULL;
// The high bit set in some byte's place when a byte of w is below n.
constexpr uint64_t wordBytesBelow(uint64_t w, unsigned n) noexcept { return (w - kWordOnes * n) & ~w & kWordHighs; }
// The same when a byte of w equals c.
constexpr uint64_t wordBytesEqual(uint64_t w, unsigned char c) noexcept {
  return wordBytesBelow(w ^ (kWordOnes * c), 1);
}

// Whether any of the 8 bytes of `w` is one mayNeedEscape() accepts.
constexpr bool anyMayNeedEscape(uint64_t w) noexcept {
  return (wordBytesBelow(w, 0x20U) | wordBytesEqual(w, 0x7FU) | wordBytesEqual(w, 0xC2U)) != 0;
}

// Appends `text` to `out` with every control character escaped: \n, \r and
// \t as those two characters, any other C0 control, DEL and a UTF-8 encoded
// C1 control as \u00XX (lowercase hex, as JSON writes them). Everything
// else, backslashes and invalid UTF-8 included, is copied as is. A text
// without a byte mayNeedEscape() accepts -- nearly every log line -- is one
// scan and one append. `Buffer` is any byte buffer with append(begin, end)
// (std::string, spdlog's memory_buf_t).
template <class Buffer>
void appendEscaped(std::string_view text, Buffer& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  const char* p = text.data();
  const char* const end = p + text.size();
  const char* run = p;  // start of the bytes not yet appended
  const auto unicode = [&out](unsigned char code) {
    const char esc[] = {'\\', 'u', '0', '0', kHex[code >> 4U], kHex[code & 0xFU]};
    out.append(esc, esc + sizeof esc);
  };
  while (p < end) {
    if (end - p >= 8) {
      uint64_t w;
      std::memcpy(&w, p, sizeof w);
      if (!anyMayNeedEscape(w)) {
        p += 8;
        continue;
      }
    }
    const auto byte = static_cast<unsigned char>(*p);
    if (!mayNeedEscape(byte)) {
      ++p;
      continue;
    }
    if (byte == 0xC2U) {
      const bool c1 =
          p + 1 < end && static_cast<unsigned char>(p[1]) <= 0x9FU && static_cast<unsigned char>(p[1]) >= 0x80U;
      if (!c1) {
        ++p;
        continue;
      }
      out.append(run, p);
      unicode(static_cast<unsigned char>(p[1]));
      p += 2;
      run = p;
      continue;
    }
    out.append(run, p);
    switch (byte) {
      case '\n':
        out.append("\\n", "\\n" + 2);
        break;
      case '\r':
        out.append("\\r", "\\r" + 2);
        break;
      case '\t':
        out.append("\\t", "\\t" + 2);
        break;
      default:
        unicode(byte);
    }
    ++p;
    run = p;
  }
  out.append(run, end);
}

}  // namespace evh::log
