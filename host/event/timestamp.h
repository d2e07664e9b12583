// RFC 3339 / ISO-8601 date-time parsing into Unix epoch milliseconds, allocation-free.
#pragma once

#include <cstdint>
#include <string_view>

namespace evh::event {

// Days from 1970-01-01 to the given proleptic Gregorian date (negative
// before). Valid for any year an int64 can hold without overflow of the
// day count; month 1-12, day 1-31 (not range-checked here).
constexpr int64_t daysFromCivil(int64_t year, unsigned month, unsigned day) noexcept {
  // Howard Hinnant's algorithm: shift the year to start in March so that the
  // leap day is the last day of the (shifted) year, then count 400-year eras.
  year -= month <= 2 ? 1 : 0;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const auto year_of_era = static_cast<unsigned>(year - era * 400);                            // [0, 399]
  const unsigned day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;  // [0, 365]
  const unsigned day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + static_cast<int64_t>(day_of_era) - 719468;
}

constexpr bool isLeapYear(int64_t year) noexcept { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

// Number of days in `month` (1-12) of `year`.
constexpr unsigned daysInMonth(int64_t year, unsigned month) noexcept {
  constexpr unsigned kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && isLeapYear(year) ? 29U : kDays[month - 1];
}

// Parses an RFC 3339 date-time -- the output of JavaScript's Date.toJSON(),
// "2024-01-15T10:30:00.000Z", is the main case:
//   YYYY-MM-DDTHH:MM:SS[.F{1,9}](Z|+HH:MM|-HH:MM)
// 'T' and 'Z' may be lower case (RFC 3339 section 5.6). The offset is required:
// a local time without one is ambiguous. Ranges are checked (month 1-12, day
// within the month incl. leap years, hour < 24, minute < 60, second <= 60 for
// a leap second, offset hour < 24 and minute < 60). Fractional seconds are
// truncated to milliseconds (towards the past). On success stores the instant
// in milliseconds since the Unix epoch and returns true; otherwise leaves
// `out_ms` untouched and returns false.
bool parseRfc3339(std::string_view text, int64_t& out_ms) noexcept;

}  // namespace evh::event
