// The wall clock and its ISO-8601 form (see clock.h).
#include "common/clock.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace evh {

uint64_t wallMs() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

std::string isoTime(uint64_t epoch_ms) {
  // The date and time to the second, formatted once per second and thread
  // (dead-letter entries come in floods, and gmtime + printf showed in profiles).
  thread_local uint64_t cached_secs = UINT64_MAX;
  thread_local char cached[80];
  const uint64_t secs = epoch_ms / 1000;
  if (secs != cached_secs) {
    const auto t = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::snprintf(cached, sizeof(cached), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached_secs = secs;
  }
  const auto ms = static_cast<unsigned>(epoch_ms % 1000);
  std::string out(cached);
  const char tail[] = {'.', static_cast<char>('0' + ms / 100), static_cast<char>('0' + ms / 10 % 10),
                       static_cast<char>('0' + ms % 10), 'Z'};
  out.append(tail, sizeof tail);
  return out;
}

}  // namespace evh
