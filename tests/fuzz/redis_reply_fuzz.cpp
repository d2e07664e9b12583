// Fuzzes what evhost makes of bytes from Redis: hiredis's reader parses them
// (RESP, fed in pieces as reads deliver them), and every reply goes through
// evhost's conversions -- the evh_reply tree plugins get (ReplyView), the
// handshake's verdicts (Handshake::check), the subscriber's classification
// (classifyPubSub) and the stream helpers' reply checks. A broken or hostile
// server must get an error or a refusal, never a crash.
#include "redis/endpoint.h"
#include "redis/handshake.h"
#include "redis/pubsub_reply.h"
#include "redis/reply.h"
#include "redis/stream_id.h"

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

namespace {

void require(bool ok) {
  if (!ok) {
    std::abort();
  }
}

// evhost never lets hiredis build an array whose declared length is over the
// reply bound: ReplyGuard refuses it from the reader's createArray hook
// (hiredis_compat.cpp), before hiredis callocs one pointer per element. That
// hook needs a live redisAsyncContext, so here the same refusal, against the
// same bound (replyBound for commands and stream reads), is made by a table
// forwarding to hiredis's own functions; without it "*2147483647" is a 16 GiB
// calloc inside hiredis. A refused object fails the reader, as in evhost.
redisReplyObjectFunctions g_functions;
const redisReplyObjectFunctions* g_defaults = nullptr;

void* boundedArray(const redisReadTask* task, int n) {
  const uint64_t bytes = sizeof(redisReply) + static_cast<uint64_t>(n > 0 ? n : 0) * sizeof(redisReply*);
  if (bytes > evh::redis::replyBound(evh::redis::ReplyKind::Command, 1024 * 1024)) {
    return nullptr;
  }
  return g_defaults->createArray(task, n);
}

struct ReaderFree {
  void operator()(redisReader* r) const { redisReaderFree(r); }
};
struct ReplyFree {
  void operator()(void* r) const { freeReplyObject(r); }
};

// Walks the evh_reply tree against the redisReply it views.
void compare(const evh_reply* view, const redisReply* r) {
  require(view != nullptr && view->struct_size == sizeof(evh_reply));
  require(view->str.ptr != nullptr);
  if (r->type == REDIS_REPLY_ARRAY) {
    require(view->type == EVH_REPLY_ARRAY && view->elements == r->elements);
    for (size_t i = 0; i < r->elements; ++i) {
      compare(view->element[i], r->element[i]);
    }
  } else if (r->str != nullptr) {
    require(view->str.ptr == r->str && view->str.len == r->len);
  }
}

void convert(const redisReply* reply) {
  const evh::redis::ReplyView view(reply);
  compare(view.root(), reply);

  // The handshake with every step: AUTH as a user, SELECT, PING.
  evh::redis::Endpoint endpoint;
  endpoint.username = "evh";
  endpoint.password = "secret";
  endpoint.db = 3;
  static const evh::redis::Handshake handshake(endpoint);
  for (size_t i = 0; i < handshake.steps().size(); ++i) {
    const std::string why = handshake.check(i, *reply, "fuzz");
    // Never the password: AUTH's failure masks it even when the server's
    // error text carries it (Redis echoes an unknown command's arguments);
    // the other steps' texts are the server's, which sent no password there.
    const bool echoed =
        reply->str != nullptr && std::string_view(reply->str, reply->len).find("secret") != std::string_view::npos;
    require((i != 0 && echoed) || why.find("secret") == std::string::npos);
  }

  const evh::redis::PubSubReply pubsub = evh::redis::classifyPubSub(reply);
  if (pubsub.kind == evh::redis::PubSubReply::Kind::Message) {
    require(reply->type == REDIS_REPLY_ARRAY);
  }

  // The stream source's checks, on the reply and its elements.
  (void)evh::redis::isErrorReply(reply, "NOGROUP");
  const std::string text = evh::redis::replyString(reply);
  (void)evh::redis::parseStreamId(text);
  if (reply->type == REDIS_REPLY_ARRAY) {
    for (size_t i = 0; i < reply->elements; ++i) {
      (void)evh::redis::parseStreamId(evh::redis::replyString(reply->element[i]));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  // The first byte picks the size of each read (1 to 256 bytes): the reader
  // must handle a reply split anywhere, as TCP delivers it.
  const size_t chunk = static_cast<size_t>(data[0]) + 1;
  std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  std::unique_ptr<redisReader, ReaderFree> reader(redisReaderCreate());
  require(reader != nullptr);
  if (g_defaults == nullptr) {
    g_defaults = reader->fn;
    g_functions = *g_defaults;
    g_functions.createArray = boundedArray;
  }
  reader->fn = &g_functions;
  while (!bytes.empty()) {
    const size_t n = std::min(chunk, bytes.size());
    require(redisReaderFeed(reader.get(), bytes.data(), n) == REDIS_OK);
    bytes.remove_prefix(n);
    for (;;) {
      void* raw = nullptr;
      if (redisReaderGetReply(reader.get(), &raw) != REDIS_OK) {
        return 0;  // a protocol error: the connection would be dropped
      }
      if (raw == nullptr) {
        break;  // needs more bytes
      }
      std::unique_ptr<void, ReplyFree> reply(raw);
      convert(static_cast<const redisReply*>(raw));
    }
  }
  return 0;
}
