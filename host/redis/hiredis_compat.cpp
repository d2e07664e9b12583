// hiredis 0.14 internals, in one place (see hiredis_compat.h for why each).
// sds.h has no extern "C" of its own in hiredis 0.14, and hiredis.h includes
// it outside its own: so it comes first, as C (for sdscatlen below).
extern "C" {
#include <hiredis/sds.h>
}

#include "redis/hiredis_compat.h"

#include "loop/io_phase.h"
#include "redis/connection.h"
#include "redis/reply_guard.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

// Exported by hiredis 0.14 (async.c) but declared in no header.
extern "C" void redisProcessCallbacks(redisAsyncContext* ac);

namespace evh::redis::compat {

// The reader and event hooks, with access to their Connection.
struct Hooks {
  // hiredis' own reply-object functions, which ours forward to (the same
  // for every context: taken from the first reader hooked).
  static inline const redisReplyObjectFunctions* defaults = nullptr;

  static ReplyGuard* guardOf(const redisReadTask* t) { return static_cast<ReplyGuard*>(t->privdata); }

  // What one allocation costs the heap beyond the bytes asked for: the
  // allocator's header and rounding (glibc: an 8-byte header, 16-byte steps,
  // 32 bytes at least). Counted so that the bound is on memory really used:
  // a one-byte element costs hiredis a redisReply and a 2-byte copy, some
  // 100 bytes, where counting the bytes asked for alone (49) let a reply of
  // tiny elements grow to twice its bound.
  static constexpr uint64_t kPerAllocation = 32;
  static constexpr uint64_t kObject = sizeof(redisReply) + kPerAllocation;

  static constexpr uint64_t stringCost(size_t n) { return kObject + n + 1 + kPerAllocation; }  // the copy has a NUL
  static constexpr uint64_t arrayCost(int n) {
    return kObject + static_cast<uint64_t>(std::max(n, 0)) * sizeof(redisReply*) + kPerAllocation;
  }

  static ReplyGuard::Object describe(const redisReadTask* t, uint64_t bytes) {
    const int depth = t->parent == nullptr ? 0 : t->parent->parent == nullptr ? 1 : 2;
    return ReplyGuard::Object{t->type, depth, t->idx, bytes, {}, 0};
  }

  static void* string(const redisReadTask* t, char* s, size_t n) {
    if (ReplyGuard* g = guardOf(t); g != nullptr) {
      ReplyGuard::Object o = describe(t, stringCost(n));
      o.text = std::string_view(s, n);
      switch (g->onObject(o)) {
        case ReplyGuard::Verdict::Refuse:
          return nullptr;
        case ReplyGuard::Verdict::Refusal:
          return refusal(g->takeRefusal(o.text));
        case ReplyGuard::Verdict::Build:
          break;
      }
    }
    return defaults->createString(t, s, n);
  }
  static void* array(const redisReadTask* t, int n) {
    if (ReplyGuard* g = guardOf(t); g != nullptr) {
      ReplyGuard::Object o = describe(t, arrayCost(n));
      o.elements = n;
      if (g->onObject(o) == ReplyGuard::Verdict::Refuse) {
        return nullptr;
      }
    }
    return defaults->createArray(t, n);
  }
  static void* integer(const redisReadTask* t, long long v) {
    ReplyGuard* g = guardOf(t);
    return g == nullptr || g->onObject(describe(t, kObject)) != ReplyGuard::Verdict::Refuse
               ? defaults->createInteger(t, v)
               : nullptr;
  }
  static void* nil(const redisReadTask* t) {
    ReplyGuard* g = guardOf(t);
    return g == nullptr || g->onObject(describe(t, kObject)) != ReplyGuard::Verdict::Refuse ? defaults->createNil(t)
                                                                                            : nullptr;
  }
  static void free(void* obj) { defaults->freeObject(obj); }

  // A blocking context's objects: the same costs, against a ReplyBudget.
  static bool withinBudget(const redisReadTask* t, uint64_t bytes) {
    auto* b = static_cast<ReplyBudget*>(t->privdata);
    if (b == nullptr) {
      return true;
    }
    if (t->parent == nullptr) {
      b->built = 0;  // a new reply: its root comes first
    }
    b->built += bytes;
    b->over = b->built > b->bound;
    return !b->over;
  }
  static void* budgetString(const redisReadTask* t, char* s, size_t n) {
    return withinBudget(t, stringCost(n)) ? defaults->createString(t, s, n) : nullptr;
  }
  static void* budgetArray(const redisReadTask* t, int n) {
    return withinBudget(t, arrayCost(n)) ? defaults->createArray(t, n) : nullptr;
  }
  static void* budgetInteger(const redisReadTask* t, long long v) {
    return withinBudget(t, kObject) ? defaults->createInteger(t, v) : nullptr;
  }
  static void* budgetNil(const redisReadTask* t) { return withinBudget(t, kObject) ? defaults->createNil(t) : nullptr; }

  // A top-level array of three strings, built with hiredis' own functions
  // (so that it frees it) from tasks made up for the purpose: 0.14's
  // createArray/createString link a child into task->parent->obj.
  static void* refusal(const std::array<std::string, 3>& parts) {
    redisReadTask top{};
    top.type = REDIS_REPLY_ARRAY;
    top.elements = 3;
    top.idx = -1;
    void* array = defaults->createArray(&top, 3);
    if (array == nullptr) {
      return nullptr;
    }
    top.obj = array;
    for (int i = 0; i < 3; ++i) {
      redisReadTask child{};
      child.type = REDIS_REPLY_STRING;
      child.idx = i;
      child.parent = &top;
      if (defaults->createString(&child, const_cast<char*>(parts[i].data()), parts[i].size()) == nullptr) {
        defaults->freeObject(array);
        return nullptr;
      }
    }
    return array;
  }

  // The Connection an adapter state belongs to (null once hiredis let go).
  static Connection* ownerOf(const redisLibuvEvents* p) {
    return p->context != nullptr ? static_cast<Connection*>(p->context->data) : nullptr;
  }

  static void poll(uv_poll_t* handle, int status, int events) {
    auto* p = static_cast<redisLibuvEvents*>(handle->data);
    if (status < 0) {
      // libuv has stopped this poll (POLLERR, e.g. a refused connect):
      // whatever hiredis asks next must start it, and hiredis reads the
      // socket error itself when told the socket is ready.
      p->events = 0;
    }
    {
      IoPhaseScope io;
      redisLibuvPoll(handle, 0, status < 0 ? (UV_READABLE | UV_WRITABLE) : events);
    }
    if (Connection* c = ownerOf(p); c != nullptr) {
      c->checkReplyBound();
    }
  }
  static void setEvents(void* privdata, int events) {
    auto* p = static_cast<redisLibuvEvents*>(privdata);
    if (events == p->events) {
      return;
    }
    p->events = events;
    if (events != 0) {
      uv_poll_start(&p->handle, events, &Hooks::poll);
    } else {
      uv_poll_stop(&p->handle);
    }
  }
  static int events(void* privdata) { return static_cast<redisLibuvEvents*>(privdata)->events; }
  static void addRead(void* privdata) {
    if (Connection* c = ownerOf(static_cast<redisLibuvEvents*>(privdata));
        c != nullptr && c->readingPaused() && !c->bridged()) {
      return;  // hiredis re-arms reading after each write; not while paused (TLS: the bridge pauses)
    }
    setEvents(privdata, events(privdata) | UV_READABLE);
  }
  static void delRead(void* privdata) { setEvents(privdata, events(privdata) & ~UV_READABLE); }
  // Inside an I/O callback (a Redis reply or message being handled, workers'
  // results: loop/io_phase.h) the write waits for the check phase, which
  // libuv runs once every I/O callback of this iteration is done: the
  // commands of a whole burst go out in one write, with no epoll_ctl to
  // watch for writability and back, and no loop iteration in between.
  // Anywhere else (timers, uv_prepare) the poll must watch for writability
  // as before: the loop could otherwise wait for I/O with the command unsent.
  static void addWrite(void* privdata) {
    Connection* c = ownerOf(static_cast<redisLibuvEvents*>(privdata));
    if (c != nullptr && c->writeInProcess()) {
      return;  // TLS: the bridge sends it
    }
    if (c != nullptr && inIoPhase() && c->deferWrite()) {
      return;
    }
    setEvents(privdata, events(privdata) | UV_WRITABLE);
  }
  static void delWrite(void* privdata) { setEvents(privdata, events(privdata) & ~UV_WRITABLE); }
};

namespace {

redisReplyObjectFunctions g_hooked = {Hooks::string, Hooks::array, Hooks::integer, Hooks::nil, Hooks::free};
redisReplyObjectFunctions g_budgeted = {Hooks::budgetString, Hooks::budgetArray, Hooks::budgetInteger, Hooks::budgetNil,
                                        Hooks::free};

ReaderBuffer bufferOf(const redisReader* r) {
  return ReaderBuffer{r->buf + r->pos, static_cast<uint64_t>(r->len - r->pos), r->ridx >= 0};
}

uint64_t pendingBulkOf(const redisReader* r) {
  size_t from = r->pos;
  if (r->ridx >= 0 && r->rstack[r->ridx].type == REDIS_REPLY_STRING) {
    // the type is read: the digits start here
  } else if (r->pos < r->len && r->buf[r->pos] == '$') {
    from = r->pos + 1;
  } else {
    return 0;
  }
  uint64_t n = 0;
  for (size_t i = from; i < r->len && r->buf[i] >= '0' && r->buf[i] <= '9'; ++i) {
    n = n > (UINT64_MAX - 9) / 10 ? UINT64_MAX : n * 10 + static_cast<uint64_t>(r->buf[i] - '0');
  }
  return n;
}

}  // namespace

void hookReader(redisAsyncContext* ac, ReplyGuard* guard) {
  redisReader* r = ac->c.reader;
  if (Hooks::defaults == nullptr) {
    Hooks::defaults = r->fn;
  }
  r->fn = &g_hooked;
  r->privdata = guard;
}

void unhookReader(redisAsyncContext* ac) { ac->c.reader->privdata = nullptr; }

bool subscribed(const redisAsyncContext* ac) { return (ac->c.flags & REDIS_SUBSCRIBED) != 0; }

bool awaitingReply(const redisAsyncContext* ac) { return ac->replies.head != nullptr; }

bool connected(const redisAsyncContext* ac) { return (ac->c.flags & REDIS_CONNECTED) != 0; }

bool closedByPeer(const redisAsyncContext* ac) {
  const bool reset = ac->c.err == REDIS_ERR_IO && std::strcmp(ac->c.errstr, std::strerror(ECONNRESET)) == 0;
  return ac->c.err == REDIS_ERR_EOF || reset;
}

std::string protocolError(int err, const char* errstr, const std::string& where) {
  if (err != REDIS_ERR_PROTOCOL) {
    return {};
  }
  std::string what = errstr != nullptr && errstr[0] != '\0' ? errstr : "unreadable reply";
  constexpr std::string_view kHiredisPrefix = "Protocol error, ";
  if (what.compare(0, kHiredisPrefix.size(), kHiredisPrefix) == 0) {
    what.erase(0, kHiredisPrefix.size());
  } else if (what.size() > 1 && what[0] >= 'A' && what[0] <= 'Z' && what[1] >= 'a' && what[1] <= 'z') {
    what[0] = static_cast<char>(what[0] - 'A' + 'a');  // "Bad bulk string length" reads on after a colon
  }
  return "protocol error: " + what + " from " + where;
}

ReaderBuffer readerBuffer(const redisAsyncContext* ac) { return bufferOf(ac->c.reader); }

uint64_t pendingBulkLength(const redisAsyncContext* ac) { return pendingBulkOf(ac->c.reader); }

void hookReader(redisContext* c, ReplyBudget* budget) {
  redisReader* r = c->reader;
  if (Hooks::defaults == nullptr) {
    Hooks::defaults = r->fn;
  }
  r->fn = &g_budgeted;
  r->privdata = budget;
}

ReaderBuffer readerBuffer(const redisContext* c) { return bufferOf(c->reader); }

uint64_t pendingBulkLength(const redisContext* c) { return pendingBulkOf(c->reader); }

bool attachToLoop(redisAsyncContext* ac, uv_loop_t* loop) {
  if (redisLibuvAttach(ac, loop) != REDIS_OK) {
    return false;
  }
  ac->ev.addRead = &Hooks::addRead;
  ac->ev.delRead = &Hooks::delRead;
  ac->ev.addWrite = &Hooks::addWrite;
  ac->ev.delWrite = &Hooks::delWrite;
  return true;
}

void stopReading(redisAsyncContext* ac) {
  if (ac->ev.delRead != nullptr) {
    ac->ev.delRead(ac->ev.data);
  }
}

void startReading(redisAsyncContext* ac) {
  if (ac->ev.addRead != nullptr) {
    ac->ev.addRead(ac->ev.data);
  }
}

void handleWrite(redisAsyncContext* ac) { redisAsyncHandleWrite(ac); }

std::string_view pendingOutput(const redisAsyncContext* ac) { return std::string_view(ac->c.obuf, sdslen(ac->c.obuf)); }

void consumeOutput(redisAsyncContext* ac) { sdsclear(ac->c.obuf); }

void feedAndProcess(redisAsyncContext* ac, const char* data, size_t n) {
  // A reader already failed refuses more; redisProcessCallbacks then meets
  // its error and disconnects, as after a failed read.
  redisReaderFeed(ac->c.reader, data, n);
  redisProcessCallbacks(ac);
}

void writeRaw(redisAsyncContext* ac, std::string_view bytes) {
  ac->c.obuf = sdscatlen(ac->c.obuf, bytes.data(), bytes.size());
  if (ac->ev.addWrite != nullptr) {
    ac->ev.addWrite(ac->ev.data);
  }
}

bool shardSubscribe(redisAsyncContext* ac, const std::string& channel, redisCallbackFn* fn, void* privdata) {
  const char* argv[] = {"SUBSCRIBE", channel.c_str()};
  const size_t lens[] = {9, channel.size()};
  const char* shard_argv[] = {"SSUBSCRIBE", channel.c_str()};
  const size_t shard_lens[] = {10, channel.size()};
  char* shard = nullptr;
  const int shard_len = redisFormatCommandArgv(&shard, 2, shard_argv, shard_lens);
  if (shard_len < 0) {
    return false;
  }
  const size_t before = sdslen(ac->c.obuf);
  void (*add_write)(void*) = ac->ev.addWrite;
  ac->ev.addWrite = nullptr;  // nothing leaves before the bytes are SSUBSCRIBE's
  const bool queued = redisAsyncCommandArgv(ac, fn, privdata, 2, argv, lens) == REDIS_OK;
  ac->ev.addWrite = add_write;
  if (queued) {
    sdssetlen(ac->c.obuf, before);  // what was queued before stays; the SUBSCRIBE goes
    ac->c.obuf = sdscatlen(ac->c.obuf, shard, static_cast<size_t>(shard_len));
    if (add_write != nullptr) {
      add_write(ac->ev.data);
    }
  }
  redisFreeCommand(shard);
  return queued;
}

}  // namespace evh::redis::compat
