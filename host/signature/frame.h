// A signed message on the wire: Standard Webhooks' three headers, then a
// blank line, then the body -- the same on Pub/Sub and in a stream entry's
// "event" field (docs/signatures.md):
//
//   webhook-id: msg_2KWPBgLlAfxdpx2AI54pPJ85f4W\n
//   webhook-timestamp: 1733241600\n
//   webhook-signature: v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=\n
//   \n
//   {"eventId":"...","eventType":"PRODUCT_CREATED",...}
//
// Parsing only: nothing here knows a key. Every view points into the
// message parsed.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace evh::signature {

// At most this many bytes before the body (the three headers and the blank line).
constexpr size_t kMaxHeaderBytes = 4096;
// At most this many signatures in webhook-signature (a rotation needs two).
constexpr size_t kMaxSignatures = 16;
// A v1 signature: base64 of 32 bytes (HMAC-SHA256), padded.
constexpr size_t kV1SignatureChars = 44;

struct Frame {
  std::string_view id;          // webhook-id: 1..256 visible ASCII characters
  std::string_view timestamp;   // webhook-timestamp: decimal seconds since the epoch, as sent
  int64_t seconds = 0;          // its value
  std::string_view signatures;  // webhook-signature's value, checked: only well-formed v1 values (and other versions)
  size_t v1_count = 0;          // how many v1 signatures it holds (>= 1)
  std::string_view body;        // everything after the blank line
};

// Why a message is not a well-formed signed message. `what` is a fixed code
// (a metrics label): "missing" (no signature headers at all, or no v1
// signature) or "malformed"; `detail` says which part, never quoting more
// than a header's name.
struct FrameError {
  const char* what;
  std::string detail;
};

// Parses `message`. Returns true and fills `out`, or false and fills `error`.
bool parseFrame(std::string_view message, Frame& out, FrameError& error);

// Calls fn(std::string_view base64) for each v1 signature of a parsed frame,
// in order, until fn returns true. Returns whether one did.
template <class Fn>
bool forEachV1(const Frame& frame, Fn&& fn) {
  std::string_view rest = frame.signatures;
  while (!rest.empty()) {
    const size_t sp = rest.find(' ');
    const std::string_view item = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
    if (item.size() == 3 + kV1SignatureChars && item.substr(0, 3) == "v1," && fn(item.substr(3))) {
      return true;
    }
  }
  return false;
}

}  // namespace evh::signature
