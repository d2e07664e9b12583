// resp_command: see resp_command.h.
#include "redis/resp_command.h"

#include <charconv>
#include <cstring>

namespace evh::redis {
namespace {

// Writes `prefix`, n in decimal and CRLF at `at`; returns the end of what it
// wrote. Room for 1 + 20 + 2 bytes is there. Most lengths have one or two
// digits: those are written without to_chars.
char* putCount(char* at, char prefix, size_t n) {
  *at++ = prefix;
  if (n < 10) {
    *at++ = static_cast<char>('0' + n);
  } else if (n < 100) {
    *at++ = static_cast<char>('0' + n / 10);
    *at++ = static_cast<char>('0' + n % 10);
  } else {
    at = std::to_chars(at, at + 20, n).ptr;
  }
  *at++ = '\r';
  *at++ = '\n';
  return at;
}

// The most a count's line takes: the prefix, 20 digits, CRLF.
constexpr size_t kCountBytes = 1 + 20 + 2;

}  // namespace

size_t formatCommand(std::string& out, int argc, const char* const* argv, const size_t* lens) {
  const size_t count = argc > 0 ? static_cast<size_t>(argc) : 0;
  size_t bound = kCountBytes + 1;  // and the NUL
  for (size_t i = 0; i < count; ++i) {
    bound += kCountBytes + lens[i] + 2;
  }
  if (out.size() < bound) {
    out.resize(bound);
  }
  char* const begin = out.data();
  char* at = putCount(begin, '*', count);
  for (size_t i = 0; i < count; ++i) {
    at = putCount(at, '$', lens[i]);
    if (lens[i] > 0) {
      std::memcpy(at, argv[i], lens[i]);
      at += lens[i];
    }
    *at++ = '\r';
    *at++ = '\n';
  }
  *at = '\0';
  return static_cast<size_t>(at - begin);
}

}  // namespace evh::redis
