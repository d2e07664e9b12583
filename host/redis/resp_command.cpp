// resp_command: see resp_command.h.
#include "redis/resp_command.h"

#include <charconv>
#include <cstring>

namespace evh::redis {
namespace {

// Appends `prefix`, n in decimal and CRLF at `at` (room for them is known to
// be there, up to `end`); returns the end of what it wrote.
char* putCount(char* at, char* end, char prefix, size_t n) {
  *at++ = prefix;
  at = std::to_chars(at, end, n).ptr;
  *at++ = '\r';
  *at++ = '\n';
  return at;
}

size_t digits(size_t n) {
  size_t d = 1;
  while (n >= 10) {
    n /= 10;
    ++d;
  }
  return d;
}

}  // namespace

void formatCommand(std::string& out, int argc, const char* const* argv, const size_t* lens) {
  const size_t count = argc > 0 ? static_cast<size_t>(argc) : 0;
  size_t total = 1 + digits(count) + 2;
  for (size_t i = 0; i < count; ++i) {
    total += 1 + digits(lens[i]) + 2 + lens[i] + 2;
  }
  out.resize(total);
  char* const end = out.data() + out.size();
  char* at = putCount(out.data(), end, '*', count);
  for (size_t i = 0; i < count; ++i) {
    at = putCount(at, end, '$', lens[i]);
    if (lens[i] > 0) {
      std::memcpy(at, argv[i], lens[i]);
      at += lens[i];
    }
    *at++ = '\r';
    *at++ = '\n';
  }
}

}  // namespace evh::redis
