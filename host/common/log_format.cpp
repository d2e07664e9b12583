// The two line formats (makeFormatter, log.h), written directly rather than
// by spdlog's pattern_formatter.
//
// Why: the pattern formatter runs one virtual flag formatter per field of
// the pattern (a dozen per line) with padding helpers around each. Under the
// durable JollyJet drain, which logs a line per event, it took 3,600
// instructions a line of the writer thread's CPU (2026-12-07). The lines
// are the same as its patterns gave:
//   text: "%Y-%m-%dT%H:%M:%S.%e %-5l [%n] " then the message, control
//         characters escaped (log_escape.h); local time.
//   json: {"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","logger":"%n","msg":"<message, JSON-escaped>"}
//         in UTC.
// Each ends with "\n". The unit test (log_format_test.cpp) compares them
// with spdlog's pattern formatter.
#include "common/log.h"

#include <spdlog/details/log_msg.h>

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string_view>

#include "common/log_escape.h"

namespace evh::log {
namespace {

void appendView(spdlog::memory_buf_t& dest, std::string_view s) { dest.append(s.data(), s.data() + s.size()); }

// `n` in decimal, zero-padded to `width` digits.
void appendPadded(spdlog::memory_buf_t& dest, uint64_t n, int width) {
  char digits[20];
  int i = 20;
  do {
    digits[--i] = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n != 0 && i > 0);
  while (20 - i < width && i > 0) {
    digits[--i] = '0';
  }
  dest.append(digits + i, digits + 20);
}

// "YYYY-MM-DDTHH:MM:SS" of a second, worked out once per second (as the
// pattern formatter does: localtime_r costs more than the rest of a line).
class SecondText {
 public:
  explicit SecondText(bool utc) : utc_(utc) {}

  std::string_view at(std::chrono::seconds second) {
    if (len_ == 0 || second != second_) {
      const time_t t = static_cast<time_t>(second.count());
      std::tm tm{};
      if (utc_) {
        gmtime_r(&t, &tm);
      } else {
        localtime_r(&t, &tm);
      }
      const int n = std::snprintf(text_, sizeof text_, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
      len_ = n > 0 ? std::min(static_cast<size_t>(n), sizeof text_ - 1) : 0;
      second_ = second;
    }
    return std::string_view(text_, len_);
  }

 private:
  bool utc_;
  std::chrono::seconds second_{0};
  char text_[32] = {};
  size_t len_ = 0;
};

// The second and the fraction of it (in Fraction units) of a log time.
template <class Fraction>
std::pair<std::chrono::seconds, uint64_t> split(spdlog::log_clock::time_point time) {
  const auto since = time.time_since_epoch();
  const auto second = std::chrono::duration_cast<std::chrono::seconds>(since);
  return {second, static_cast<uint64_t>(std::chrono::duration_cast<Fraction>(since - second).count())};
}

class TextFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto [second, ms] = split<std::chrono::milliseconds>(msg.time);
    appendView(dest, second_.at(second));
    dest.push_back('.');
    appendPadded(dest, ms, 3);
    dest.push_back(' ');
    const auto level = spdlog::level::to_string_view(msg.level);
    dest.append(level.data(), level.data() + level.size());
    for (size_t n = level.size(); n < 5; ++n) {
      dest.push_back(' ');
    }
    appendView(dest, " [");
    dest.append(msg.logger_name.data(), msg.logger_name.data() + msg.logger_name.size());
    appendView(dest, "] ");
    appendEscaped(std::string_view(msg.payload.data(), msg.payload.size()), dest);
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<TextFormatter>(); }

 private:
  SecondText second_{false};
};

// Whether a byte of `w` is a quote, a backslash or below 0x20 (what a JSON
// string must escape), by log_escape.h's word tests.
bool anyJsonSpecial(uint64_t w) {
  return (wordBytesBelow(w, 0x20U) | wordBytesEqual(w, '"') | wordBytesEqual(w, '\\')) != 0;
}

void appendJsonEscaped(std::string_view text, spdlog::memory_buf_t& dest) {
  static constexpr char kHex[] = "0123456789abcdef";
  const char* p = text.data();
  const char* const end = p + text.size();
  const char* run = p;  // start of the bytes not yet appended
  while (p < end) {
    if (end - p >= 8) {
      uint64_t w;
      std::memcpy(&w, p, sizeof w);
      if (!anyJsonSpecial(w)) {
        p += 8;
        continue;
      }
    }
    const auto u = static_cast<unsigned char>(*p);
    if (u >= 0x20 && u != '"' && u != '\\') {
      ++p;
      continue;
    }
    dest.append(run, p);
    switch (u) {
      case '"':
        appendView(dest, "\\\"");
        break;
      case '\\':
        appendView(dest, "\\\\");
        break;
      case '\n':
        appendView(dest, "\\n");
        break;
      case '\r':
        appendView(dest, "\\r");
        break;
      case '\t':
        appendView(dest, "\\t");
        break;
      default: {
        const char esc[] = {'\\', 'u', '0', '0', kHex[u >> 4], kHex[u & 0xF]};
        dest.append(esc, esc + sizeof esc);
      }
    }
    ++p;
    run = p;
  }
  dest.append(run, end);
}

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto [second, us] = split<std::chrono::microseconds>(msg.time);
    appendView(dest, R"({"time":")");
    appendView(dest, second_.at(second));
    dest.push_back('.');
    appendPadded(dest, us, 6);
    appendView(dest, R"(Z","level":")");
    const auto level = spdlog::level::to_string_view(msg.level);
    dest.append(level.data(), level.data() + level.size());
    appendView(dest, R"(","logger":")");
    dest.append(msg.logger_name.data(), msg.logger_name.data() + msg.logger_name.size());
    appendView(dest, R"(","msg":")");
    appendJsonEscaped(std::string_view(msg.payload.data(), msg.payload.size()), dest);
    appendView(dest, "\"}\n");
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }

 private:
  SecondText second_{true};
};

}  // namespace

std::unique_ptr<spdlog::formatter> makeFormatter(Format format) {
  if (format == Format::Json) {
    return std::make_unique<JsonFormatter>();
  }
  return std::make_unique<TextFormatter>();
}

}  // namespace evh::log
