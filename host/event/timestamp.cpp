// RFC 3339 date-time parser: fixed-layout scanning, no locale, no allocation.
#include "event/timestamp.h"

#include <cstddef>

namespace evh::event {
namespace {

constexpr int64_t kMsPerSecond = 1000;
constexpr int64_t kMsPerMinute = 60 * kMsPerSecond;
constexpr int64_t kMsPerHour = 60 * kMsPerMinute;
constexpr int64_t kMsPerDay = 24 * kMsPerHour;

bool digit(char c) noexcept { return c >= '0' && c <= '9'; }

// Reads exactly `count` ASCII digits at `pos` as a decimal number.
bool readDigits(std::string_view text, size_t pos, size_t count, unsigned& value) noexcept {
  if (pos + count > text.size()) {
    return false;
  }
  unsigned result = 0;
  for (size_t i = pos; i < pos + count; ++i) {
    if (!digit(text[i])) {
      return false;
    }
    result = result * 10 + static_cast<unsigned>(text[i] - '0');
  }
  value = result;
  return true;
}

bool expect(std::string_view text, size_t pos, char c) noexcept { return pos < text.size() && text[pos] == c; }

}  // namespace

bool parseRfc3339(std::string_view text, int64_t& out_ms) noexcept {
  // Fixed-width prefix: YYYY-MM-DDTHH:MM:SS occupies bytes 0..18.
  unsigned year = 0;
  unsigned month = 0;
  unsigned day = 0;
  unsigned hour = 0;
  unsigned minute = 0;
  unsigned second = 0;
  if (!readDigits(text, 0, 4, year) || !expect(text, 4, '-') || !readDigits(text, 5, 2, month) ||
      !expect(text, 7, '-') || !readDigits(text, 8, 2, day) || !(expect(text, 10, 'T') || expect(text, 10, 't')) ||
      !readDigits(text, 11, 2, hour) || !expect(text, 13, ':') || !readDigits(text, 14, 2, minute) ||
      !expect(text, 16, ':') || !readDigits(text, 17, 2, second)) {
    return false;
  }
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59 || second > 60) {
    return false;
  }

  size_t pos = 19;
  int64_t fraction_ms = 0;
  if (expect(text, pos, '.')) {
    ++pos;
    const size_t first = pos;
    // Keep the first three digits (milliseconds); the rest only need to be digits.
    int64_t scale = 100;
    while (pos < text.size() && digit(text[pos])) {
      fraction_ms += scale * (text[pos] - '0');
      scale /= 10;
      ++pos;
    }
    const size_t digits = pos - first;
    if (digits < 1 || digits > 9) {
      return false;
    }
  }

  int64_t offset_ms = 0;
  if (expect(text, pos, 'Z') || expect(text, pos, 'z')) {
    ++pos;
  } else if (expect(text, pos, '+') || expect(text, pos, '-')) {
    const bool negative = text[pos] == '-';
    unsigned offset_hour = 0;
    unsigned offset_minute = 0;
    if (!readDigits(text, pos + 1, 2, offset_hour) || !expect(text, pos + 3, ':') ||
        !readDigits(text, pos + 4, 2, offset_minute) || offset_hour > 23 || offset_minute > 59) {
      return false;
    }
    offset_ms = offset_hour * kMsPerHour + offset_minute * kMsPerMinute;
    if (negative) {
      offset_ms = -offset_ms;
    }
    pos += 6;
  } else {
    return false;
  }
  if (pos != text.size()) {
    return false;
  }

  // A local time of +02:00 is two hours ahead of UTC, so subtract the offset.
  out_ms = daysFromCivil(year, month, day) * kMsPerDay + hour * kMsPerHour + minute * kMsPerMinute +
           second * kMsPerSecond + fraction_ms - offset_ms;
  return true;
}

}  // namespace evh::event
