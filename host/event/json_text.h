// Text-level JSON helpers for the envelope decoder that need no parser: whitespace, the number grammar, quoting a value
// for a one-line detail message, and a bracket scan for broken input.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace evh::event {

inline bool isJsonSpace(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

inline std::string_view trimRight(std::string_view text) noexcept {
  while (!text.empty() && isJsonSpace(text.back())) {
    text.remove_suffix(1);
  }
  return text;
}

// RFC 8259's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?
bool isJsonNumber(std::string_view s) noexcept;

// Longest value quoted in a detail message, so hostile input cannot bloat logs.
inline constexpr size_t kMaxQuoted = 64;

// "value" for a detail message: escaped so it stays one printable line, cut at
// kMaxQuoted bytes on a UTF-8 character boundary.
std::string quoted(std::string_view text);

// Stand-in for a structural scan when the message is not valid JSON: did
// brackets outside strings nest deeper than max_depth anywhere? Lets a broken
// but hostile message (e.g. 100,000 unclosed '[') be reported as TooDeep.
bool nestsDeeperThan(std::string_view bytes, size_t max_depth) noexcept;

}  // namespace evh::event
