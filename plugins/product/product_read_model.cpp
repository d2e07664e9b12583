// product_read_model: applying an event to Redis in one step. kApplyScript
// (below, with why it is a script) writes the read model, invalidates the
// caches, writes the idempotency mark and publishes the notification
// atomically; apply() sends it as one EVALSHA (EVAL when Redis has not
// cached it) through the host's command connection, and onApplied() turns
// its reply into the call's answer.
#include "product.h"

#include "product_text.h"

#include <openssl/evp.h>

#include <cstring>
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
// the mark (the host skips the call, or this script returns "already
// applied" if the two raced). Without idempotency there is no mark and the
// script still publishes, so a retry after a lost reply may announce twice
// (subscribers can deduplicate on payload.sourceEventId).
//
// Redis does not roll a script back when a command in it fails, so the script
// makes sure a WRONGTYPE changes nothing (the hash's type is checked before
// any write; a set's write that fails is undone, below), and writes the set
// memberships before the hash: were
// a write to fail anyway (say, out of memory), the retry still reads the same
// previous category and repeats every step. Every write is idempotent (SREM,
// SADD, HSET, HDEL, DEL); the mark comes after them (a mark before a failed
// write would make the retry skip the event), the PUBLISH last.
//
// KEYS[1]: the product's hash; KEYS[2], if given: the idempotency mark.
// ARGV is flat -- no JSON to decode: ARGV[1] the mark's TTL in ms ("0"
// without a mark), then the action, the productId, "1" and the category the
// event gives (or "0" alone), and then counted runs (a count, then that many
// arguments): the hash's field/value pairs to set, the fields to remove, the
// category set's key template, the cache keys, the number of cache key
// templates with {category} and each one as a run; last the notification:
// "1", its channel, its head and tail, and "1" and the name the event gives
// (or "0" alone), or "0" alone without a notification. A key template is
// rendered except for {category} and split there: the key is
// table.concat(parts, category). The notification is JSON text around the
// members only the read model knows: head .. [,"name":..][,"category":..]
// [,"previousCategory":..] .. tail.
//
// Commands per event: EXISTS for the mark, TYPE for the hash (it tells the
// script both whether the product exists and that the key is a hash), HMGET
// only when it exists, SREM/SADD, HSET (HDEL), DEL of the caches, SET of the
// mark, PUBLISH -- 7 for a new product. A set's type is not checked up
// front: its write runs under redis.pcall, and a failure of the second set
// write puts back what the first one removed, so a WRONGTYPE still leaves
// nothing changed (and names the key).
//
// Returns {existed (0/1), previous name or nil, previous category or nil,
// applied (1, or 0 when the mark was already there and nothing was done)}.
constexpr const char* kApplyScript = R"lua(
local hash, mark = KEYS[1], KEYS[2]
if mark and redis.call('EXISTS', mark) == 1 then return {0, false, false, 0} end
local i = 2
local function take() local v = ARGV[i]; i = i + 1; return v end
local function run() local n = tonumber(take()); local first = i; i = i + n; return first, i - 1 end
local function parts() local f, l = run(); return {unpack(ARGV, f, l)} end
local action, id = take(), take()
local given = false
if take() == '1' then given = take() end
local setFirst, setLast = run()
local unsetFirst, unsetLast = run()
local categoryKey = parts()
local cacheFirst, cacheLast = run()
local templates = {}
for t = 1, tonumber(take()) do templates[t] = parts() end
local note = false
if take() == '1' then
  note = {channel = take(), head = take(), tail = take()}
  if take() == '1' then note.name = take() end
end
local function keyOf(p, category) return table.concat(p, category) end
local function failed(key, want, err)
  if string.sub(err, 1, 9) == 'WRONGTYPE' then
    err = 'WRONGTYPE ' .. key .. ' holds a ' .. redis.call('TYPE', key)['ok'] .. ' value, not a ' .. want
  end
  return redis.error_reply(err)
end
local function inChunks(cmd, key, first, last)
  for j = first, last, 500 do redis.call(cmd, key, unpack(ARGV, j, math.min(j + 499, last))) end
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
  local oldSet = keyOf(categoryKey, prevCategory)
  local r = redis.pcall('SREM', oldSet, id)
  if type(r) == 'table' and r.err then return failed(oldSet, 'set', r.err) end
  removed = r
end
if category then
  local newSet = keyOf(categoryKey, category)
  local r = redis.pcall('SADD', newSet, id)
  if type(r) == 'table' and r.err then
    if removed == 1 then redis.call('SADD', keyOf(categoryKey, prevCategory), id) end
    return failed(newSet, 'set', r.err)
  end
end
if action == 'deleted' then
  if existed == 1 then redis.call('DEL', hash) end
else
  if setLast >= setFirst then inChunks('HSET', hash, setFirst, setLast) end
  if unsetLast >= unsetFirst then inChunks('HDEL', hash, unsetFirst, unsetLast) end
end
local caches = {}
for j = cacheFirst, cacheLast do caches[#caches + 1] = ARGV[j] end
for _, p in ipairs(templates) do
  if prevCategory then caches[#caches + 1] = keyOf(p, prevCategory) end
  if category and category ~= prevCategory then caches[#caches + 1] = keyOf(p, category) end
end
if #caches > 0 then redis.call('DEL', unpack(caches)) end
if mark then redis.call('SET', mark, '1', 'PX', ARGV[1]) end
if note then
  local msg = note.head
  local function member(name, value)
    if value then msg = msg .. ',"' .. name .. '":' .. cjson.encode(value) end
  end
  member('name', note.name or prevName)
  if action == 'deleted' then member('category', prevCategory) else member('category', category) end
  if action ~= 'deleted' and given and prevCategory and given ~= prevCategory then
    member('previousCategory', prevCategory)
  end
  redis.call('PUBLISH', note.channel, msg .. note.tail)
end
return {existed, prevName, prevCategory, 1}
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

// Sends kApplyScript for the job by its SHA-1 (Redis caches every script it
// has run): 40 bytes on the wire instead of the script's 2.8 KB, and no
// digest of the text by Redis per event. The reply completes the call
// (onApplied); a NOSCRIPT answer (Redis restarted or its scripts flushed)
// sends the script whole once, which caches it again.
evh::Result Product::apply(const evh::Event& ev, const std::string& hash, const std::shared_ptr<Job>& job) {
  auto call = std::make_shared<ScriptCall>();
  call->keys.push_back(hash);
  // On an idempotent route the script writes the mark with the effects --
  // in the read model's slot when the keys carry a hash tag.
  if (!ev.idempotencyKey().empty()) {
    call->keys.push_back(settings_.markKey(ev.idempotencyKey(), prefix_));
    call->args.push_back(std::to_string(ev.idempotencyTtlMs()));
  } else {
    call->args.emplace_back("0");
  }
  scriptArgs(*job, call->args);
  evh_status s = sendScript(call, job, true);
  if (s != EVH_OK) {
    redis_errors_.add();
    return evh::Result::retry("product: cannot send EVALSHA for " + hash + ": " + describeStatus(s));
  }
  return evh::Result::pending();
}

evh_status Product::sendScript(const std::shared_ptr<ScriptCall>& call, const std::shared_ptr<Job>& job, bool by_sha) {
  const std::string numkeys = std::to_string(call->keys.size());
  const std::string_view script = by_sha ? std::string_view(script_sha_) : std::string_view(kApplyScript);
  std::vector<std::string_view> argv{by_sha ? "EVALSHA" : "EVAL", script, numkeys};
  argv.insert(argv.end(), call->keys.begin(), call->keys.end());
  argv.insert(argv.end(), call->args.begin(), call->args.end());
  return host().command(argv, [this, call, job, by_sha](const evh::Reply& r) {
    if (by_sha && r.isError() && r.str().rfind("NOSCRIPT", 0) == 0) {
      host().debug("product: Redis has not cached the apply script (restarted or flushed?): sending it whole");
      if (evh_status s = sendScript(call, job, false); s != EVH_OK) {
        redis_errors_.add();
        job->done.complete(
            evh::Result::retry("product: cannot send EVAL for " + call->keys.front() + ": " + describeStatus(s)));
      }
      return;
    }
    onApplied(job, r);
  });
}

// kApplyScript's ARGV after the mark's TTL (see the script for the layout).
void Product::scriptArgs(const Job& job, std::vector<std::string>& args) {
  const Change& c = job.change;
  auto run = [&args](const std::vector<std::string>& items) {
    args.push_back(std::to_string(items.size()));
    args.insert(args.end(), items.begin(), items.end());
  };
  args.emplace_back(actionName(c.action));
  args.push_back(c.product_id);
  args.emplace_back(c.category ? "1" : "0");
  if (c.category) {
    args.push_back(*c.category);
  }
  run(c.set);
  run(c.unset);
  run(category_key_);
  std::vector<std::string> plain;
  std::vector<std::vector<std::string>> templated;
  for (const auto& t : settings_.cache_keys) {
    std::vector<std::string> parts = t.render(prefix_, c.product_id);
    if (parts.size() == 1) {
      plain.push_back(std::move(parts.front()));
    } else {
      templated.push_back(std::move(parts));
    }
  }
  run(plain);
  args.push_back(std::to_string(templated.size()));
  for (const auto& parts : templated) {
    run(parts);
  }
  if (!settings_.notify) {
    args.emplace_back("0");
    return;
  }
  Note note = notification(job);
  args.emplace_back("1");
  args.push_back(std::move(note.channel));
  args.push_back(std::move(note.head));
  args.push_back(std::move(note.tail));
  args.emplace_back(c.name ? "1" : "0");
  if (c.name) {
    args.push_back(*c.name);  // else the script uses the read model's
  }
}

void Product::fail(const std::shared_ptr<Job>& job, const std::string& step, const evh::Reply& r) {
  redis_errors_.add();
  job->done.complete(evh::Result::retry("product: " + step + " failed: " + r.describe()));
}

// The script ran: the read model is written, the caches invalidated, the
// notification published -- or the mark said it all happened before.
void Product::onApplied(const std::shared_ptr<Job>& job, const evh::Reply& r) {
  if (!r.ok() || r.type() != EVH_REPLY_ARRAY || r.size() != 4) {
    if (r.ok()) {
      redis_errors_.add();
      job->done.complete(evh::Result::retry("product: unexpected reply to the apply script"));
      return;
    }
    const std::string step = "applying " + job->change.event_type + " for productId=" + job->change.product_id;
    if (r.isError() && r.str().rfind("CROSSSLOT", 0) == 0) {
      // The keys are in different slots of a Redis Cluster: no retry
      // changes that, the config must (the event is dead-lettered and can be
      // replayed once it has).
      redis_errors_.add();
      job->done.complete(evh::Result::reject(
          "product: " + step + " failed: " + r.describe() +
          " -- on a Redis Cluster give the plugin a hash_tag (its config) so that the read model, the caches and "
          "the idempotency mark share one slot"));
      return;
    }
    fail(job, step, r);
    return;
  }
  if (r[3].integer() == 0) {
    already_applied_.add();
    host().debug("product eventId=" + logValue(job->event_id) + " productId=" + logValue(job->change.product_id) +
                 " already applied (its idempotency mark exists): nothing done");
    job->done.complete(evh::Result::ok());
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
  finish(*job, before);
}

}  // namespace product
