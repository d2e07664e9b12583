// RESP text for unit tests, and hiredis's own reader to turn it into the
// redisReply objects a connection would be handed: the most honest way to
// get real replies without a server.
#pragma once

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

namespace evh::test::resp {

inline std::string bulk(std::string_view s) {
  return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n";
}
inline std::string num(long long n) { return ":" + std::to_string(n) + "\r\n"; }
inline std::string arr(std::initializer_list<std::string> items) {
  std::string out = "*" + std::to_string(items.size()) + "\r\n";
  for (const auto& i : items) {
    out += i;
  }
  return out;
}
inline const std::string kNil = "$-1\r\n";

using ReplyPtr = std::unique_ptr<redisReply, void (*)(void*)>;

// The one whole reply `text` holds; nullptr when it holds none (or is not
// RESP).
inline ReplyPtr parse(const std::string& text) {
  std::unique_ptr<redisReader, void (*)(redisReader*)> reader(redisReaderCreate(), redisReaderFree);
  void* r = nullptr;
  if (redisReaderFeed(reader.get(), text.data(), text.size()) != REDIS_OK ||
      redisReaderGetReply(reader.get(), &r) != REDIS_OK) {
    return ReplyPtr(nullptr, freeReplyObject);
  }
  return ReplyPtr(static_cast<redisReply*>(r), freeReplyObject);
}

}  // namespace evh::test::resp
