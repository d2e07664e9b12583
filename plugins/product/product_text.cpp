// product_text: quoting, ISO-8601 times and log values for the product
// plugin (see product_text.h).
#include "product_text.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace product {

std::string quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Text with nothing to escape -- printable ASCII without '"' or '\\', as
// ids, names and categories mostly are -- is quoted as it is; anything else
// goes through nlohmann's escaping, which stays the definition (the unit test
// compares the two). Building a json value and dumping it for every string
// was 7.6k of evhost's ~113k instructions per event in the JollyJet drain
// (callgrind, 2026-12-07).
void appendJsonString(std::string& out, std::string_view s) {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f || c == '"' || c == '\\') {
      out += nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      return;
    }
  }
  out += '"';
  out.append(s);
  out += '"';
}

// ---- ISO-8601 times ----------------------------------------------------------

// The text up to the seconds ("2024-01-15T10:30:00") is kept for the last
// two seconds asked for, per thread: events and notifications come many per
// second, and gmtime_r and snprintf took 2-3 % of evhost's CPU in the JollyJet
// pipeline (2026-12-07), for the same second again and again. Two, because
// each event asks for two times -- its own timestamp's (createdAt,
// updatedAt) and now (the notification's) -- which are seconds apart
// whenever events wait in a stream: with one kept, they took turns evicting
// each other and every call formatted (callgrind, the durable drain: 5.7k of
// evhost's ~113k instructions per event).
void appendIsoUtc(std::string& out, int64_t ms) {
  int64_t secs = ms / 1000;
  int64_t rem = ms % 1000;
  if (rem < 0) {  // floor, for times before 1970
    rem += 1000;
    secs -= 1;
  }
  struct Second {
    int64_t secs = INT64_MIN;
    char text[64]{};
    size_t len = 0;
  };
  thread_local Second kept[2];
  thread_local unsigned older = 0;  // the slot a new second replaces
  Second* hit = kept[0].secs == secs ? &kept[0] : kept[1].secs == secs ? &kept[1] : nullptr;
  if (hit == nullptr) {
    std::time_t t = static_cast<std::time_t>(secs);
    std::tm tm{};
    if (gmtime_r(&t, &tm) == nullptr) {
      out += std::to_string(ms);
      return;
    }
    char text[sizeof(Second::text)];
    const int n = std::snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (n <= 0 || static_cast<size_t>(n) >= sizeof(text)) {
      out += std::to_string(ms);
      return;
    }
    hit = &kept[older];
    older ^= 1U;
    std::memcpy(hit->text, text, static_cast<size_t>(n));
    hit->len = static_cast<size_t>(n);
    hit->secs = secs;
  } else {
    older = hit == &kept[0] ? 1U : 0U;  // the other one is the older
  }
  const int r = static_cast<int>(rem);
  const char ms_text[5] = {'.', static_cast<char>('0' + r / 100), static_cast<char>('0' + r / 10 % 10),
                           static_cast<char>('0' + r % 10), 'Z'};
  out.append(hit->text, hit->len).append(ms_text, sizeof ms_text);
}

std::string isoUtc(int64_t ms) {
  std::string out;
  appendIsoUtc(out, ms);
  return out;
}

int64_t nowMs() {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  return std::chrono::duration_cast<std::chrono::milliseconds>(now).count();
}

// ---- log values ------------------------------------------------------------------

// A value in a key=value log line: bare when that is unambiguous, otherwise
// quoted with escapes, so that a name with spaces or a line break can
// neither split the line nor fake another field.
namespace {

bool logSpecial(unsigned char u) { return u < 0x20 || u == 0x7f || u == '"' || u == '\\'; }

}  // namespace

void appendLogQuoted(std::string& out, std::string_view s) {
  out += '"';
  size_t run = 0;  // the start of the bytes not yet appended
  for (size_t i = 0; i < s.size(); ++i) {
    const auto u = static_cast<unsigned char>(s[i]);
    if (!logSpecial(u)) {
      continue;
    }
    out.append(s.data() + run, i - run);
    run = i + 1;
    if (u == '"' || u == '\\') {
      out += '\\';
      out += static_cast<char>(u);
    } else if (u == '\n') {
      out += "\\n";
    } else if (u == '\r') {
      out += "\\r";
    } else if (u == '\t') {
      out += "\\t";
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", u);
      out += buf;
    }
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

void appendLogValue(std::string& out, std::string_view s) {
  bool bare = !s.empty();
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '"' || c == '\\' || c == '=' || c == ',' || c == '[' || c == ']') {
      bare = false;
      break;
    }
  }
  if (bare) {
    out.append(s);
  } else {
    appendLogQuoted(out, s);
  }
}

std::string logQuoted(std::string_view s) {
  std::string out;
  appendLogQuoted(out, s);
  return out;
}

std::string logValue(std::string_view s) {
  std::string out;
  appendLogValue(out, s);
  return out;
}

}  // namespace product
