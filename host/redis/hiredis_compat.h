// Everything here that depends on hiredis 0.14's internals rather than its
// documented API, in one place: the custom reply-object functions, the
// libuv adapter's poll struct, direct writes to the output buffer, peeks
// into the reader's buffer and the async context's callback list. Each
// says why it exists and what a hiredis upgrade (Debian's next is 1.x)
// would change. Nothing else in host/ may reach into hiredis' structs.
// THREAD: loop (every function runs on the thread that owns the context).
#pragma once

#include <hiredis/async.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace evh::redis {
class ReplyGuard;
}

namespace evh::redis::compat {

// --- The reader's reply-object functions --------------------------------
// Replaces the reader's functions with ones that pass each object through
// `guard` (ReplyGuard::onObject) before hiredis' own build it. Why: bounding
// a reply while it is read, and refusing malformed ones, is only possible
// object by object; hiredis has no reply-size option. Upgrade: hiredis 1.x
// adds createDouble/createBool (RESP3) to redisReplyObjectFunctions, which
// the table in hiredis_compat.cpp must then forward too; the hook idea
// stays (1.x keeps reader->fn and reader->privdata).
void hookReader(redisAsyncContext* ac, ReplyGuard* guard);
// The reader forgets its guard (every object is then built unchecked):
// before the guard's owner lets go of a context hiredis may still read.
void unhookReader(redisAsyncContext* ac);

// --- The async context's state --------------------------------------------
// In subscribed mode (a (P)SUBSCRIBE was sent). Reads c.flags.
bool subscribed(const redisAsyncContext* ac);
// A regular (non-Pub/Sub) command's callback is queued: the next reply is
// its answer. Reads ac->replies.head: hiredis has no accessor for it.
bool awaitingReply(const redisAsyncContext* ac);
// The socket is connected (hiredis calls the disconnect callback only then).
bool connected(const redisAsyncContext* ac);
// The connection ended by the server's doing: end of stream, or a reset
// (Redis closing with our last bytes unread). hiredis 0.14 reports a reset
// only as REDIS_ERR_IO with strerror(ECONNRESET) as its text, so the text is
// compared. Upgrade: re-check the texts 1.x sets.
bool closedByPeer(const redisAsyncContext* ac);

// --- The reader's errors ----------------------------------------------------
// A reader error (c.err == REDIS_ERR_PROTOCOL: a type byte that is no
// RESP, a length out of range, arrays nested deeper than 7) as evhost words
// protocol errors: "protocol error: <what> from <where>". hiredis' own text
// names a protocol error only for a bad type byte ("Protocol error, got
// ..."); "Multi-bulk length out of range" alone would read as anything, and
// count as "other" among failure kinds. Empty for any other error. Upgrade:
// re-check the texts 1.x sets (it words most of them the same).
std::string protocolError(int err, const char* errstr, const std::string& where);

// --- The reader's buffer ----------------------------------------------------
// Why: an endless bulk string is never parsed, only buffered, so the bytes
// buffered must count against the reply bound; and a stream entry too large
// is refused from its declared length before it is read. hiredis keeps
// buf/pos/len/ridx/rstack in redisReader, which is public in 0.14 and 1.x;
// the parser's steps (below) are not part of any API.
struct ReaderBuffer {
  const char* data;   // the first byte not yet parsed
  uint64_t buffered;  // bytes read but not yet parsed
  bool mid_reply;     // part of a reply is parsed (its objects are built)
};
ReaderBuffer readerBuffer(const redisAsyncContext* ac);
// The declared length of the bulk string the reader is waiting for; 0 when
// it waits for anything else. hiredis 0.14 takes the type byte ('$') off
// first and records it in the current task, then leaves its position at the
// length until the whole string is in. Upgrade: re-check against 1.x's
// processItem/processBulkItem (the same in 1.0 to 1.2, to be verified).
uint64_t pendingBulkLength(const redisAsyncContext* ac);

// --- A blocking context's reader (evhctl) ------------------------------------
// The reply being read and its bound: hookReader(redisContext*) costs each
// object as the async hooks do and adds it to `built` (which restarts at
// each reply); an object that takes it over `bound` fails the reader
// (hiredis says "Out of memory") with `over` set. Why: hiredis' blocking
// redisGetReply reads until a reply is whole, however long it grows.
struct ReplyBudget {
  uint64_t bound = 0;
  uint64_t built = 0;
  bool over = false;
};
void hookReader(redisContext* c, ReplyBudget* budget);
ReaderBuffer readerBuffer(const redisContext* c);
uint64_t pendingBulkLength(const redisContext* c);

// --- The libuv adapter --------------------------------------------------------
// redisLibuvAttach, then our own event hooks on its redisLibuvEvents (poll
// struct): the 0.14 adapter drops poll errors (a refused connect would wait
// for our connect timeout) and restarts the poll on every call (an
// epoll_ctl per message). Ours hand errors to hiredis as readiness, touch
// the poll only when the set of events changes, hold off reading while the
// owner (ac->data, a Connection) pauses it, check the reply bound after
// every read, and leave a write asked for inside an I/O callback to the
// owner's check phase (Connection::onCheck, loop/io_phase.h); a TLS
// connection's writes go to its bridge (Connection::writeInProcess), never
// to the socket. Upgrade:
// newer adapters change redisLibuvEvents (a timer for hiredis' own
// timeouts): re-read it and keep these differences only if still needed.
// Returns false when it cannot attach.
bool attachToLoop(redisAsyncContext* ac, uv_loop_t* loop);
// Stop / start watching the socket for reading (through the hooks above).
void stopReading(redisAsyncContext* ac);
void startReading(redisAsyncContext* ac);

// Writes what hiredis holds for `ac` now (what the poll would do on
// writability): what is left (the socket full) is watched for as usual. May
// free `ac` (a write error disconnects it).
void handleWrite(redisAsyncContext* ac);

// --- Raw writes ------------------------------------------------------------------
// Appends bytes to the output buffer (obuf) and asks for a write, with no
// callback queued. Why: in subscribed mode hiredis 0.14 queues the callback
// of any command but (P)SUBSCRIBE on a list only error replies drain, and
// the PING reply (["pong", ""]) never drains it: each keep-alive PING would
// leak a node for the life of the connection. Upgrade: check how the newer
// async.c matches a subscribed-mode PING's reply to its callback; if it
// does, send the PING as an ordinary command and drop this.
void writeRaw(redisAsyncContext* ac, std::string_view bytes);

// --- Sharded Pub/Sub -------------------------------------------------------------
// SSUBSCRIBEs `channel` with `fn`/`privdata` as its callback. Why: hiredis
// 0.14 knows only (P)SUBSCRIBE; SSUBSCRIBE sent as an ordinary command
// would queue one callback for its confirmation, and the first "smessage"
// after it would find none (an assert in redisProcessCallbacks). So hiredis
// is handed a SUBSCRIBE of `channel` -- it registers the callback by channel
// name and enters subscribed mode, as for any SUBSCRIBE -- and the bytes it
// queued are replaced with SSUBSCRIBE's before anything is written (the
// write hook is held off meanwhile: a TLS connection writes at once). What
// Redis sends back ("ssubscribe", "smessage", "sunsubscribe" arrays naming
// the channel) is matched by name to that callback, as for a classic
// channel: hiredis picks the pattern table only for a kind that starts
// with 'p', and no kind but "unsubscribe" makes it forget the callback. So
// it keeps the callback for the context's life, SUNSUBSCRIBE or not, and
// calls it with NULL when the context goes: `privdata` must stay valid
// until then unless a later shardSubscribe of the channel replaces it.
// False when hiredis refuses the command (the context is closing).
// Upgrade: hiredis 1.x keeps the same tables; re-check how it treats
// "ssubscribe" (a RESP3 push in newer releases) before dropping this.
bool shardSubscribe(redisAsyncContext* ac, const std::string& channel, redisCallbackFn* fn, void* privdata);

// --- A context fed in process (TLS: redis/tls_bridge.h) ------------------------
// What hiredis has formatted and not written, and taking it: the TLS bridge
// sends it itself, so hiredis's socket never carries a byte. Why: hiredis
// 0.14 writes only to its own descriptor. Upgrade: 1.x has its own TLS
// (hiredis_ssl) and this goes.
std::string_view pendingOutput(const redisAsyncContext* ac);
void consumeOutput(redisAsyncContext* ac);
// Hands `n` bytes Redis sent to the reader and runs the callbacks of the
// replies now whole -- what redisAsyncHandleRead does after its read(2).
// May free `ac` (a protocol error disconnects it). Why: redisReaderFeed and
// redisProcessCallbacks are exported by 0.14 but the latter is undeclared.
void feedAndProcess(redisAsyncContext* ac, const char* data, size_t n);

}  // namespace evh::redis::compat
