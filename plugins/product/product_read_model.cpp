// product_read_model: applying events to Redis, a batch at a time, each in
// one step. kApplyScript (below, with why it is a script) writes the read
// model, invalidates the caches, writes the idempotency mark and publishes
// the notification atomically for each event of a batch; apply() queues an
// event and flush() sends the batch as one EVALSHA (EVAL when Redis has not
// cached it) through the host's command connection; onApplied() turns the
// reply into each call's answer.
#include "product.h"

#include "product_text.h"

#include <openssl/evp.h>

#include <cstring>
#include <iterator>
#include <stdexcept>
#include <utility>

namespace product {
namespace {

// Applies one event to the read model, invalidates the caches, writes the
// idempotency mark and publishes the notification, in one atomic step.
//
// Why a script and not separate commands or MULTI/EXEC: an update has to read
// the product's current category before it can move the set membership and
// name the old category's cache, and a script is the one way to make that
// read and the writes a single step that no other client (nor another event
// for the same product in flight on our own connection) can interleave with.
// MULTI cannot branch on a read, and separate commands would let two
// concurrent updates of one product each read the same old category and
// leave the product in two sets.
//
// Why the mark and the PUBLISH are in it too: on an idempotent route the host
// writes the mark only after the plugin answered OK, so a crash in between
// redelivers an event whose effects already happened. The read-model writes
// would merely repeat (they are idempotent), but a notification would be
// published twice. With the mark written here, atomically with every effect,
// an event is applied -- and announced -- exactly once: a redelivery finds
// the mark and this script returns "already applied" (the plugin declares
// EVH_PLUGIN_OWN_IDEMPOTENCY, so the host does not ask for it first). Without idempotency there is no mark and the
// script still publishes, so a retry after a lost reply may announce twice
// (subscribers can deduplicate on payload.sourceEventId).
//
// Redis does not roll a script back when a command in it fails, so the script
// makes sure a WRONGTYPE changes nothing (the hash's type is checked before
// any other write; a set's write that fails is undone, below), and writes the
// set memberships before the hash: were a write to fail anyway (say, out of
// memory), the retry still reads the same previous category and repeats every
// step. Every write is idempotent (SREM, SADD, HSET, HDEL, DEL), the PUBLISH
// comes last. The mark is taken first, with SET NX -- one command both checks
// and writes it -- and removed again when anything after it fails, so that a
// failed event is not skipped by its retry: DEL of a key is allowed even when
// Redis is out of memory, and nothing else runs in between (a script is one
// step).
//
// One call applies a batch: ARGV[1] is the number of events, then what all
// of them share -- the category set's key template as a counted run (a
// count, then that many arguments) and the notification channel ("" with
// notifications off) -- and then each event's arguments in turn; KEYS holds
// each event's keys in turn: its hash, then its idempotency mark if it has
// one. Why batches: Redis pays for a script call (parsing it, building its
// KEYS and ARGV tables) once per batch, and evhost sends and reads one
// command instead of many. The events run in their order, each as it would
// alone: under pcall, so that an event whose write fails answers with its
// own error and the others still apply (a failed event keeps what it wrote
// before the failure, as a lone script would). Under a Redis Cluster every
// key of a batch must share a slot: the `hash_tag` setting does that.
//
// An event's arguments are flat -- no JSON to decode: "1" when it has a
// mark (its key the next of KEYS) or "0", the mark's TTL in ms ("0"
// without a mark), the action, the productId, "1" and the category the
// event gives (or "0" alone), and then counted runs: the hash's field/value
// pairs to set, the fields to remove, the cache keys, the number of cache
// key templates with {category} and each one as a run; last the
// notification: "1", its head and tail, and "1" and the name the event
// gives as JSON text (or "0" alone), or "0" alone without a notification.
// A key template is rendered except for {category} and split there: the
// key is table.concat(ARGV, category, first, last) over its run. The
// notification is JSON text around the members only the read model knows:
// head .. [,"name":..] [,"category":..] [,"previousCategory":..] .. tail.
//
// Why the script reads ARGV by index into locals, with no helper function
// per argument, no table per event and no closure per notification: Lua's
// own work was the largest part of Redis's CPU per event, and this way it
// took half as long (5.4 against 10-12 µs per event with every redis.call
// stubbed out, 64-event batches, 2026-12-07).
//
// Commands per event: SET NX of the mark, TYPE for the hash (it tells the
// script both whether the product exists and that the key is a hash), HMGET
// only when it exists, SREM/SADD, HSET (HDEL), DEL of the caches, PUBLISH --
// 6 for a new product (5 without a mark); and DEL of the mark when a write
// failed. A set's type is not checked up front: its write runs under
// redis.pcall, and a failure of the second set write puts back what the
// first one removed, so a WRONGTYPE still leaves nothing changed (and names
// the key).
//
// Returns one element per event, in order: {existed (0/1), previous name or
// nil, previous category or nil, applied (1, or 0 when the mark was already
// there and nothing was done)}, or an error.
constexpr const char* kApplyScript = R"lua(
local A = ARGV
local i, k = 2, 1
local function failed(key, want, err)
  if string.sub(err, 1, 9) == 'WRONGTYPE' then
    err = 'WRONGTYPE ' .. key .. ' holds a ' .. redis.call('TYPE', key)['ok'] .. ' value, not a ' .. want
  end
  return redis.error_reply(err)
end
local function inChunks(cmd, key, first, last)
  for j = first, last, 500 do redis.call(cmd, key, unpack(A, j, math.min(j + 499, last))) end
end
local catFirst = i + 1
i = i + 1 + tonumber(A[i])
local catLast = i - 1
local channel = A[i]
i = i + 1
local function setKey(category) return table.concat(A, category, catFirst, catLast) end
local marked = false
local function apply(hash, mark, ttl, action, id, given, setFirst, setLast, unsetFirst, unsetLast, cacheFirst,
                     cacheLast, tplFirst, tplCount, head, tail, nameText)
  if mark then
    if not redis.call('SET', mark, '1', 'NX', 'PX', ttl) then return {0, false, false, 0} end
    marked = true
  end
  local t = redis.call('TYPE', hash)['ok']
  if t ~= 'none' and t ~= 'hash' then return failed(hash, 'hash', 'WRONGTYPE') end
  local existed = (t == 'hash') and 1 or 0
  local prevName, prevCategory = false, false
  if existed == 1 then
    local prev = redis.call('HMGET', hash, 'name', 'category')
    prevName, prevCategory = prev[1], prev[2]
  end
  local category = prevCategory
  if action == 'deleted' then category = false elseif given then category = given end
  local removed = 0
  if prevCategory and prevCategory ~= category then
    local oldSet = setKey(prevCategory)
    local r = redis.pcall('SREM', oldSet, id)
    if type(r) == 'table' and r.err then return failed(oldSet, 'set', r.err) end
    removed = r
  end
  if category then
    local newSet = setKey(category)
    local r = redis.pcall('SADD', newSet, id)
    if type(r) == 'table' and r.err then
      if removed == 1 then redis.call('SADD', setKey(prevCategory), id) end
      return failed(newSet, 'set', r.err)
    end
  end
  if action == 'deleted' then
    if existed == 1 then redis.call('DEL', hash) end
  else
    if setLast >= setFirst then inChunks('HSET', hash, setFirst, setLast) end
    if unsetLast >= unsetFirst then inChunks('HDEL', hash, unsetFirst, unsetLast) end
  end
  if tplCount == 0 then
    if cacheLast >= cacheFirst then redis.call('DEL', unpack(A, cacheFirst, cacheLast)) end
  else
    local caches = {unpack(A, cacheFirst, cacheLast)}
    local j = tplFirst
    for _ = 1, tplCount do
      local f, l = j + 1, j + tonumber(A[j])
      if prevCategory then caches[#caches + 1] = table.concat(A, prevCategory, f, l) end
      if category and category ~= prevCategory then caches[#caches + 1] = table.concat(A, category, f, l) end
      j = l + 1
    end
    if #caches > 0 then redis.call('DEL', unpack(caches)) end
  end
  if head then
    if not nameText and prevName then nameText = cjson.encode(prevName) end
    local shown = category
    if action == 'deleted' then shown = prevCategory end
    local moved = action ~= 'deleted' and given and prevCategory and given ~= prevCategory
    redis.call('PUBLISH', channel, head ..
      (nameText and (',"name":' .. nameText) or '') ..
      (shown and (',"category":' .. cjson.encode(shown)) or '') ..
      (moved and (',"previousCategory":' .. cjson.encode(prevCategory)) or '') .. tail)
  end
  return {existed, prevName, prevCategory, 1}
end
local out = {}
for n = 1, tonumber(A[1]) do
  local hash, mark = KEYS[k], false
  k = k + 1
  if A[i] == '1' then mark = KEYS[k]; k = k + 1 end
  local ttl, action, id, given = A[i + 1], A[i + 2], A[i + 3], false
  i = i + 4
  if A[i] == '1' then given = A[i + 1]; i = i + 2 else i = i + 1 end
  local setFirst = i + 1
  i = i + 1 + tonumber(A[i])
  local setLast, unsetFirst = i - 1, i + 1
  i = i + 1 + tonumber(A[i])
  local unsetLast, cacheFirst = i - 1, i + 1
  i = i + 1 + tonumber(A[i])
  local cacheLast, tplCount, tplFirst = i - 1, tonumber(A[i]), i + 1
  i = i + 1
  for _ = 1, tplCount do i = i + 1 + tonumber(A[i]) end
  local head, tail, nameText = false, false, false
  if A[i] == '1' then
    head, tail = A[i + 1], A[i + 2]
    i = i + 3
    if A[i] == '1' then nameText = A[i + 1]; i = i + 2 else i = i + 1 end
  else
    i = i + 1
  end
  marked = false
  local ok, r = pcall(apply, hash, mark, ttl, action, id, given, setFirst, setLast,
                             unsetFirst, unsetLast, cacheFirst, cacheLast, tplFirst, tplCount, head, tail, nameText)
  if not ok and not (type(r) == 'table' and r.err) then r = redis.error_reply(tostring(r)) end
  if marked and type(r) == 'table' and r.err then redis.pcall('DEL', mark) end
  out[n] = r
end
return out
)lua";

// Redis names a cached script by the SHA-1 of its text, in lower-case hex.
// OpenSSL's digest (libcrypto, which evhost links already) rather than a
// hand-written SHA-1.
std::string sha1Hex(const char* text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(text, std::strlen(text), digest, &n, EVP_sha1(), nullptr) != 1) {
    throw std::runtime_error("cannot compute the SHA-1 of the apply script (OpenSSL EVP_Digest failed)");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < n; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0xf];
  }
  return hex;
}

std::string describeStatus(evh_status s) {
  switch (s) {
    case EVH_ERR_UNAVAILABLE:
      return "redis unavailable";
    case EVH_ERR_CANCELLED:
      return "host shutting down";
    case EVH_ERR_NOMEM:
      return "out of memory";
    default:
      return "status " + std::to_string(s);
  }
}

}  // namespace

std::string Product::scriptSha() { return sha1Hex(kApplyScript); }

// Queues the event on the open batch. The batch is sent by a flush() posted
// to the loop -- after the events handed over with this one (the rest of a
// stream read, of a burst of messages) have joined it -- or at once when it
// holds max_batch events.
void Product::apply(const evh::Event& ev, Job job) {
  if (!open_) {
    open_ = std::make_shared<Batch>();
    Args& shared = open_->args;
    // Room for one event (about 40 arguments, 1-2 KiB with the default
    // templates and a product of a few fields); more grows geometrically.
    open_->keys.reserve(2, 128);
    shared.reserve(48, 2048);
    shared.add(category_key_.size());
    for (const auto& part : category_key_) {
      shared.add(part);
    }
    shared.add(settings_.notify ? prefix_ + settings_.channel : std::string());
  }
  Batch& b = *open_;
  settings_.product_key.renderTo(b.keys, prefix_, job.change.product_id);
  // On an idempotent route the script writes the mark with the effects --
  // in the read model's slot when the keys carry a hash tag.
  if (!ev.idempotencyKey().empty()) {
    if (settings_.hash_tag.empty()) {
      b.keys.add(ev.idempotencyKey());
    } else {
      b.keys.add(settings_.markKey(ev.idempotencyKey(), prefix_));
    }
    b.args.add("1");
    b.args.add(static_cast<int64_t>(ev.idempotencyTtlMs()));
  } else {
    b.args.add("0");
    b.args.add("0");
  }
  scriptArgs(job, b.args);
  b.jobs.push_back(std::move(job));
  if (b.jobs.size() >= static_cast<size_t>(settings_.max_batch)) {
    flush();
  } else if (!flush_posted_) {
    // post() fails only when the host is shutting down: then send it now.
    flush_posted_ = host().post([this] {
      flush_posted_ = false;
      flush();
    }) == EVH_OK;
    if (!flush_posted_) {
      flush();
    }
  }
}

// Sends the open batch by kApplyScript's SHA-1 (Redis caches every script it
// has run): 40 bytes on the wire instead of the script's text, and no digest
// of the text by Redis per call. The reply completes the calls (onApplied);
// a NOSCRIPT answer (Redis restarted or its scripts flushed) sends the
// script whole once, which caches it again.
void Product::flush() {
  std::shared_ptr<Batch> batch = std::move(open_);
  open_.reset();
  if (!batch || batch->jobs.empty()) {
    return;
  }
  if (evh_status s = sendScript(batch, true); s != EVH_OK) {
    failAll(*batch, evh::Result::retry("product: cannot send EVALSHA for " + std::to_string(batch->jobs.size()) +
                                       " events: " + describeStatus(s)));
  }
}

evh_status Product::sendScript(const std::shared_ptr<Batch>& batch, bool by_sha) {
  const std::string numkeys = std::to_string(batch->keys.size());
  const std::string events = std::to_string(batch->jobs.size());
  const std::string_view script = by_sha ? std::string_view(script_sha_) : std::string_view(kApplyScript);
  std::vector<evh_str> argv;
  argv.reserve(4 + batch->keys.size() + batch->args.size());
  argv.insert(argv.end(), {evh::str(by_sha ? "EVALSHA" : "EVAL"), evh::str(script), evh::str(numkeys)});
  batch->keys.views(argv);
  argv.push_back(evh::str(events));
  batch->args.views(argv);
  return host().command(argv.data(), argv.size(), [this, batch, by_sha](const evh::Reply& r) {
    if (by_sha && r.isError() && r.str().rfind("NOSCRIPT", 0) == 0) {
      host().debug("product: Redis has not cached the apply script (restarted or flushed?): sending it whole");
      if (evh_status s = sendScript(batch, false); s != EVH_OK) {
        failAll(*batch, evh::Result::retry("product: cannot send EVAL for " + std::to_string(batch->jobs.size()) +
                                           " events: " + describeStatus(s)));
      }
      return;
    }
    onApplied(*batch, r);
  });
}

// An event's arguments to kApplyScript after its mark and the mark's TTL
// (see the script for the layout), copied into the batch's buffer.
void Product::scriptArgs(const Job& job, Args& args) const {
  const Change& c = job.change;
  auto run = [&args](const std::vector<std::string>& items) {
    args.add(items.size());
    for (const auto& item : items) {
      args.add(item);
    }
  };
  args.add(actionName(c.action));
  args.add(c.product_id);
  if (c.category) {
    args.add("1");
    args.add(*c.category);
  } else {
    args.add("0");
  }
  run(c.set);
  run(c.unset);
  // The cache keys: those without {category} as one run, then the number
  // of those with it and each one's parts as a run.
  size_t plain = 0;
  for (const auto& t : settings_.cache_keys) {
    plain += t.parts() == 1 ? 1 : 0;
  }
  args.add(plain);
  for (const auto& t : settings_.cache_keys) {
    if (t.parts() == 1) {
      t.renderTo(args, prefix_, c.product_id);
    }
  }
  args.add(settings_.cache_keys.size() - plain);
  for (const auto& t : settings_.cache_keys) {
    if (t.parts() > 1) {
      args.add(t.parts());
      t.renderTo(args, prefix_, c.product_id);
    }
  }
  if (!settings_.notify) {
    args.add("0");
    return;
  }
  const Note note = notification(job);
  args.add("1");
  args.add(note.head);
  args.add(note.tail);
  if (c.name) {
    args.add("1");
    args.add(note.name);  // else the script uses the read model's
  } else {
    args.add("0");
  }
}

// Every call of the batch answered alike: the script did not run, or its
// reply is not one to read.
void Product::failAll(Batch& batch, const evh::Result& why) {
  for (const Job& job : batch.jobs) {
    redis_errors_.add();
    job.done.complete(why);
  }
}

// The script ran, or Redis refused the call as a whole.
void Product::onApplied(Batch& batch, const evh::Reply& r) {
  if (r.ok() && r.type() == EVH_REPLY_ARRAY && r.size() == batch.jobs.size()) {
    for (size_t n = 0; n < batch.jobs.size(); ++n) {
      onEventApplied(batch.jobs[n], r[n]);
    }
    return;
  }
  if (r.ok()) {
    failAll(batch, evh::Result::retry("product: unexpected reply to the apply script"));
    return;
  }
  const std::string step = "applying " + std::to_string(batch.jobs.size()) + " events (the first " +
                           batch.jobs.front().change.event_type +
                           " for productId=" + batch.jobs.front().change.product_id + ")";
  if (r.isError() && r.str().rfind("CROSSSLOT", 0) == 0) {
    // The keys are in different slots of a Redis Cluster: no retry
    // changes that, the config must (the events are dead-lettered and can be
    // replayed once it has).
    failAll(batch, evh::Result::reject(
                       "product: " + step + " failed: " + r.describe() +
                       " -- on a Redis Cluster give the plugin a hash_tag (its config) so that the read model, the "
                       "caches and the idempotency marks share one slot"));
    return;
  }
  failAll(batch, evh::Result::retry("product: " + step + " failed: " + r.describe()));
}

// One event's element of the script's reply: the read model is written, the
// caches invalidated, the notification published -- or the mark said it all
// happened before, or this event failed (and the batch's others did not).
void Product::onEventApplied(const Job& job, const evh::Reply& r) {
  if (!r.ok() || r.type() != EVH_REPLY_ARRAY || r.size() != 4) {
    redis_errors_.add();
    if (r.ok()) {
      job.done.complete(evh::Result::retry("product: unexpected reply to the apply script"));
      return;
    }
    job.done.complete(evh::Result::retry("product: applying " + job.change.event_type +
                                         " for productId=" + job.change.product_id + " failed: " + r.describe()));
    return;
  }
  if (r[3].integer() == 0) {
    already_applied_.add();
    host().debug("product eventId=" + logValue(job.event_id) + " productId=" + logValue(job.change.product_id) +
                 " already applied (its idempotency mark exists): nothing done");
    job.done.complete(evh::Result::ok());
    return;
  }
  Before before;
  before.existed = r[0].integer() != 0;
  if (r[1].type() == EVH_REPLY_STRING) {
    before.name = std::string(r[1].str());
  }
  if (r[2].type() == EVH_REPLY_STRING) {
    before.category = std::string(r[2].str());
  }
  finish(job, before);
}

}  // namespace product
