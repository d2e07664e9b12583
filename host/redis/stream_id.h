// Stream entry ids ("<ms>-<seq>") and the small reply checks the stream
// source's files share.
#pragma once

#include <hiredis/hiredis.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

namespace evh::redis {

// (ms, seq): ids compare as pairs of numbers, not as text ("9-0" < "10-0").
inline std::pair<uint64_t, uint64_t> parseStreamId(const std::string& id) {
  char* end = nullptr;
  const uint64_t ms = std::strtoull(id.c_str(), &end, 10);
  const uint64_t seq = (end != nullptr && *end == '-') ? std::strtoull(end + 1, nullptr, 10) : 0;
  return {ms, seq};
}

inline bool streamIdLess(const std::string& a, const std::string& b) { return parseStreamId(a) < parseStreamId(b); }

// An error reply whose text starts with `prefix` (e.g. "NOGROUP").
inline bool isErrorReply(const redisReply* r, const char* prefix) {
  return r != nullptr && r->type == REDIS_REPLY_ERROR && std::strncmp(r->str, prefix, std::strlen(prefix)) == 0;
}

inline std::string replyString(const redisReply* r) {
  return r != nullptr && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) ? std::string(r->str, r->len)
                                                                                          : std::string();
}

}  // namespace evh::redis
