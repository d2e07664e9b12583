// product_text: the product plugin's small text helpers: quoting a name in
// an error message, a value as a JSON string, ISO-8601 UTC times, and values
// in key=value log lines that a hostile name can neither split nor use to
// fake another field.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace product {

// s in double quotes, as is: for names in error messages.
std::string quote(std::string_view s);

// Appends s as a JSON string, quotes included, as nlohmann's dump writes it
// (invalid UTF-8 replaced by U+FFFD).
void appendJsonString(std::string& out, std::string_view s);

// "2024-01-15T10:30:00.000Z" for milliseconds since the Unix epoch.
std::string isoUtc(int64_t ms);
void appendIsoUtc(std::string& out, int64_t ms);  // the same, appended to out
// The current time in milliseconds since the Unix epoch (isoUtc(nowMs()):
// now, as isoUtc() writes it).
int64_t nowMs();

// s for a key=value log line: bare when that is unambiguous, else as
// logQuoted() writes it (always in quotes, '"', '\\' and control characters
// escaped).
std::string logValue(std::string_view s);
std::string logQuoted(std::string_view s);
// The same appended to `out` (a log line is built in one buffer).
void appendLogValue(std::string& out, std::string_view s);
void appendLogQuoted(std::string& out, std::string_view s);

}  // namespace product
