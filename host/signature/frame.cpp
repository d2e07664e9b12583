// Parsing the headers of a signed message: strict, bounded, and without
// looking at the body.
#include "signature/frame.h"

namespace evh::signature {
namespace {

constexpr size_t kMaxIdBytes = 256;
constexpr size_t kMaxTimestampDigits = 12;

// `a` equals the lowercase `b`, ASCII letters compared without case (no
// locale: a header name is ASCII).
bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    const char c = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    if (c != b[i]) {
      return false;
    }
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

bool isBase64Char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

// A v1 value: 43 base64 characters and one '=' (32 bytes).
bool wellFormedV1(std::string_view b64) {
  if (b64.size() != kV1SignatureChars || b64.back() != '=') {
    return false;
  }
  for (size_t i = 0; i + 1 < b64.size(); ++i) {
    if (!isBase64Char(b64[i])) {
      return false;
    }
  }
  return true;
}

bool fail(FrameError& error, const char* what, std::string detail) {
  error.what = what;
  error.detail = std::move(detail);
  return false;
}

bool readId(std::string_view v, Frame& out, FrameError& error) {
  if (v.empty() || v.size() > kMaxIdBytes) {
    return fail(error, "malformed", "webhook-id must be 1 to 256 characters");
  }
  for (char c : v) {
    if (c < 0x21 || c > 0x7e) {
      return fail(error, "malformed", "webhook-id holds a character other than visible ASCII");
    }
  }
  out.id = v;
  return true;
}

bool readTimestamp(std::string_view v, Frame& out, FrameError& error) {
  if (v.empty() || v.size() > kMaxTimestampDigits) {
    return fail(error, "malformed", "webhook-timestamp must be 1 to 12 decimal digits (seconds since the epoch)");
  }
  int64_t s = 0;
  for (char c : v) {
    if (c < '0' || c > '9') {
      return fail(error, "malformed", "webhook-timestamp must be decimal digits (seconds since the epoch)");
    }
    s = s * 10 + (c - '0');
  }
  out.timestamp = v;
  out.seconds = s;
  return true;
}

bool readSignatures(std::string_view v, Frame& out, FrameError& error) {
  size_t items = 0;
  size_t v1 = 0;
  std::string_view rest = v;
  while (!rest.empty()) {
    const size_t sp = rest.find(' ');
    const std::string_view item = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
    if (item.empty()) {
      return fail(error, "malformed", "webhook-signature has an empty item (two spaces in a row?)");
    }
    if (++items > kMaxSignatures) {
      return fail(error, "malformed", "webhook-signature holds more than 16 signatures");
    }
    const size_t comma = item.find(',');
    if (comma == std::string_view::npos || comma == 0) {
      return fail(error, "malformed", "webhook-signature item " + std::to_string(items) + " is not <version>,<value>");
    }
    if (item.substr(0, comma) != "v1") {
      continue;  // another scheme (v1a: asymmetric) is not ours to check
    }
    if (!wellFormedV1(item.substr(comma + 1))) {
      return fail(error, "malformed",
                  "webhook-signature item " + std::to_string(items) + " is not base64 of 32 bytes (44 characters)");
    }
    ++v1;
  }
  if (v1 == 0) {
    return fail(error, "missing", "webhook-signature holds no v1 signature");
  }
  out.signatures = v;
  out.v1_count = v1;
  return true;
}

}  // namespace

bool parseFrame(std::string_view message, Frame& out, FrameError& error) {
  out = Frame{};
  if (message.size() < 8 || !iequals(message.substr(0, 8), "webhook-")) {
    return fail(error, "missing", "the message has no signature headers (a signed message starts with webhook-id:)");
  }
  // Only the first 4 KiB are searched: a long body is never scanned here.
  const std::string_view head = message.substr(0, kMaxHeaderBytes + 4);
  const size_t end = head.find("\n\n");
  const size_t crlf_end = head.find("\r\n\r\n");
  size_t header_end = end;
  size_t body_at = end == std::string_view::npos ? end : end + 2;
  if (crlf_end != std::string_view::npos && (end == std::string_view::npos || crlf_end < end)) {
    header_end = crlf_end;
    body_at = crlf_end + 4;
  }
  if (header_end == std::string_view::npos || header_end > kMaxHeaderBytes) {
    return fail(error, "malformed", "no blank line ends the signature headers within 4096 bytes");
  }
  bool have_id = false;
  bool have_ts = false;
  bool have_sig = false;
  std::string_view headers = message.substr(0, header_end);
  while (!headers.empty()) {
    const size_t nl = headers.find('\n');
    const std::string_view line = headers.substr(0, nl);
    headers = nl == std::string_view::npos ? std::string_view() : headers.substr(nl + 1);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      return fail(error, "malformed", "a signature header line has no ':'");
    }
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    bool* seen = nullptr;
    bool ok = true;
    if (iequals(name, "webhook-id")) {
      seen = &have_id;
      ok = !have_id && readId(value, out, error);
    } else if (iequals(name, "webhook-timestamp")) {
      seen = &have_ts;
      ok = !have_ts && readTimestamp(value, out, error);
    } else if (iequals(name, "webhook-signature")) {
      seen = &have_sig;
      ok = !have_sig && readSignatures(value, out, error);
    } else {
      return fail(error, "malformed",
                  "unknown signature header (only webhook-id, webhook-timestamp and "
                  "webhook-signature may come before the blank line)");
    }
    if (!ok) {
      if (*seen) {
        return fail(error, "malformed", std::string(name) + " appears twice");
      }
      return false;
    }
    *seen = true;
  }
  if (!have_id || !have_ts || !have_sig) {
    return fail(error, "missing",
                std::string("no ") +
                    (!have_id   ? "webhook-id"
                     : !have_ts ? "webhook-timestamp"
                                : "webhook-signature") +
                    " header");
  }
  out.body = message.substr(body_at);
  return true;
}

}  // namespace evh::signature
