// What one connection's reader may build: every reply object passes here
// (through the reader hooks in hiredis_compat.cpp) before hiredis builds it,
// and the bytes still buffered are checked after every read. It
// - notes liveness: every top-level reply bumps repliesSeen(). hiredis 0.14
//   offers no way to see the reply to a PING sent in subscribed mode (it
//   lands in no callback), so "anything arrived since the PING" is the
//   keep-alive's signal;
// - bounds the reply being read (see replyBound() in endpoint.h): its
//   objects count against the bound, and so do the bytes still buffered;
// - refuses what hiredis would abort() on (an assert) from a broken server:
//   a reply nobody asked for, or a subscribed-mode array of the wrong shape;
// - turns a refused (P|S)SUBSCRIBE into an array naming the subscription
//   (Refusal), which hiredis routes to its callback, instead of letting
//   hiredis drop the connection.
// A refused object makes the reader fail ("out of memory"); the reason set
// first in the connection's drop reason is what its disconnect reports.
#pragma once

#include "redis/endpoint.h"

#include <array>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <utility>

struct redisAsyncContext;

namespace evh::redis {

// The first element of the array a refused (P|S)SUBSCRIBE turns into.
// hiredis looks its callback up by the second (the name): in its pattern
// table for a kind that starts with 'p', in its channel table otherwise.
inline constexpr const char* kSubscribeRefused = "subscribe-refused";
inline constexpr const char* kPsubscribeRefused = "psubscribe-refused";
inline constexpr const char* kSsubscribeRefused = "ssubscribe-refused";

// What a subscription is: a channel (SUBSCRIBE), a pattern (PSUBSCRIBE) or a
// shard channel (SSUBSCRIBE, Redis 7: sharded Pub/Sub).
enum class SubscribeKind { Channel, Pattern, Shard };

class ReplyGuard {
 public:
  // One reply object the reader is about to build, as the hooks see it.
  struct Object {
    int type;               // REDIS_REPLY_*
    int depth;              // 0: a whole reply; 1: an element of one; 2: deeper
    int idx;                // its place in its parent (depth > 0)
    uint64_t bytes;         // what building it costs
    std::string_view text;  // strings, statuses and errors
    int elements;           // arrays: their length
  };
  enum class Verdict {
    Build,   // hiredis builds it as usual
    Refuse,  // the reader fails; the connection drops with drop_reason
    Refusal  // an error answering a (P)SUBSCRIBE: build refusal() instead
  };
  struct Overflow {
    std::string why;        // the drop reason
    std::string_view head;  // the first bytes buffered (at most 4 KiB, raw RESP)
    uint64_t held;          // bytes held for the reply (or the item's declared length)
  };

  // subscriber: the connection runs in subscribed mode. where and
  // drop_reason belong to the connection and outlive this.
  ReplyGuard(bool subscriber, const std::string& where, std::string& drop_reason)
      : subscriber_(subscriber), where_(where), drop_reason_(drop_reason) {}

  // The context being read (nullptr: none; every object is then built).
  void setContext(redisAsyncContext* ac) noexcept { ac_ = ac; }
  // A new connection: the handshake's bound, no subscriptions pending.
  void startHandshake();
  // Handshake done: the bound for what this connection reads from now on.
  void becomeReady(uint64_t max_message_bytes);
  uint64_t bound() const noexcept { return bound_; }
  uint64_t repliesSeen() const noexcept { return replies_seen_; }

  // A (P|S)SUBSCRIBE went out: Redis answers them in the order sent, and
  // each confirmation or refusal is matched to the oldest here.
  void expectSubscribe(SubscribeKind kind, std::string name) {
    unanswered_subscribes_.emplace_back(kind, std::move(name));
  }
  void forgetSubscribes() { unanswered_subscribes_.clear(); }

  // THREAD: loop (inside hiredis' reader).
  Verdict onObject(const Object& o);
  // After Verdict::Refusal: [kind, name, error] for the oldest unanswered
  // (P|S)SUBSCRIBE, which is then answered.
  std::array<std::string, 3> takeRefusal(std::string_view error);

  // After a read: whether what the reader holds is over the bound, or the
  // bulk string it waits for declares a length over it -- or, when
  // max_item_bytes is set and the connection is ready, over that (each
  // refused before it is read). `held` is then what the reader holds (the
  // item's declared length for max_item_bytes).
  bool overflows(const redisAsyncContext* ac, uint64_t max_item_bytes, Overflow& out) const;

 private:
  Verdict refuse(std::string why);
  bool subscribedMode() const;  // subscribed, with no regular reply queued: what arrives is Pub/Sub
  std::string oversizeReason() const;

  bool subscriber_;
  const std::string& where_;
  std::string& drop_reason_;
  redisAsyncContext* ac_ = nullptr;
  bool ready_ = false;
  uint64_t replies_seen_ = 0;
  uint64_t reply_bytes_ = 0;  // objects built for the reply being read
  uint64_t bound_ = kHandshakeReplyBytes;
  std::deque<std::pair<SubscribeKind, std::string>> unanswered_subscribes_;  // in the order sent
};

}  // namespace evh::redis
