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
// checks the type of every key it writes before writing anything (a WRONGTYPE
// then changes nothing), and writes the set memberships before the hash: were
// a write to fail anyway (say, out of memory), the retry still reads the same
// previous category and repeats every step. Every write is idempotent (SREM,
// SADD, HSET, HDEL, DEL); the mark comes after them (a mark before a failed
// write would make the retry skip the event), the PUBLISH last.
//
// KEYS[1]: the product's hash; KEYS[2], if given: the idempotency mark, with
// ARGV[2] its TTL in ms. ARGV[1]: JSON {action, productId, category? (the
// category the product has afterwards, when the event gives one), set:
// [field, value, ...], unset: [field, ...], categoryKey: parts, cacheKeys:
// [key, ...], cacheCategoryKeys: [parts, ...], note?: {channel, head, name?,
// tail}}, where "parts" is a key template already rendered except for
// {category}, split there: the key is table.concat(parts, category); and
// note is the notification as JSON text around the members only the read
// model knows: head .. [,"name":..][,"category":..][,"previousCategory":..] .. tail.
// Returns {existed (0/1), previous name or nil, previous category or nil,
// applied (1, or 0 when the mark was already there and nothing was done)}.
constexpr const char* kApplyScript = R"lua(
local a = cjson.decode(ARGV[1])
local hash = KEYS[1]
local mark = KEYS[2]
if mark and redis.call('EXISTS', mark) == 1 then return {0, false, false, 0} end
local function keyOf(parts, category) return table.concat(parts, category) end
local function wrongType(key, want)
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'none' and t ~= want then
    return 'WRONGTYPE ' .. key .. ' holds a ' .. t .. ' value, not a ' .. want
  end
  return nil
end
local function inChunks(cmd, key, items)
  for i = 1, #items, 500 do
    redis.call(cmd, key, unpack(items, i, math.min(i + 499, #items)))
  end
end
local err = wrongType(hash, 'hash')
if err then return redis.error_reply(err) end
local existed = redis.call('EXISTS', hash)
local prev = redis.call('HMGET', hash, 'name', 'category')
local prevName, prevCategory = prev[1], prev[2]
local category = prevCategory
if a.action == 'deleted' then
  category = false
elseif a.category then
  category = a.category
end
local oldSet, newSet
if prevCategory and prevCategory ~= category then oldSet = keyOf(a.categoryKey, prevCategory) end
if category then newSet = keyOf(a.categoryKey, category) end
for _, key in ipairs({oldSet or false, newSet or false}) do
  if key then
    err = wrongType(key, 'set')
    if err then return redis.error_reply(err) end
  end
end
if oldSet then redis.call('SREM', oldSet, a.productId) end
if newSet then redis.call('SADD', newSet, a.productId) end
if a.action == 'deleted' then
  redis.call('DEL', hash)
else
  if #a.set > 0 then inChunks('HSET', hash, a.set) end
  if #a.unset > 0 then inChunks('HDEL', hash, a.unset) end
end
local caches = {}
for _, key in ipairs(a.cacheKeys) do caches[#caches + 1] = key end
for _, parts in ipairs(a.cacheCategoryKeys) do
  if prevCategory then caches[#caches + 1] = keyOf(parts, prevCategory) end
  if category and category ~= prevCategory then caches[#caches + 1] = keyOf(parts, category) end
end
if #caches > 0 then redis.call('DEL', unpack(caches)) end
if mark then redis.call('SET', mark, '1', 'PX', ARGV[2]) end
if a.note then
  local n = a.note
  local msg = n.head
  local function member(name, value)
    if value then msg = msg .. ',"' .. name .. '":' .. cjson.encode(value) end
  end
  member('name', n.name or prevName)
  if a.action == 'deleted' then member('category', prevCategory) else member('category', category) end
  if a.action ~= 'deleted' and a.category and prevCategory and a.category ~= prevCategory then
    member('previousCategory', prevCategory)
  end
  redis.call('PUBLISH', n.channel, msg .. n.tail)
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
  call->args.push_back(scriptArgs(*job));
  // On an idempotent route the script writes the mark with the effects.
  if (!ev.idempotencyKey().empty()) {
    call->keys.emplace_back(ev.idempotencyKey());
    call->args.push_back(std::to_string(ev.idempotencyTtlMs()));
  }
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

std::string Product::scriptArgs(const Job& job) {
  const Change& c = job.change;
  Json a = {{"action", actionName(c.action)},
            {"productId", c.product_id},
            {"set", c.set},
            {"unset", c.unset},
            {"categoryKey", category_key_},
            {"cacheKeys", Json::array()},
            {"cacheCategoryKeys", Json::array()}};
  if (c.category) {
    a["category"] = *c.category;
  }
  for (const auto& t : settings_.cache_keys) {
    std::vector<std::string> parts = t.render(prefix_, c.product_id);
    if (parts.size() == 1) {
      a["cacheKeys"].push_back(parts.front());
    } else {
      a["cacheCategoryKeys"].push_back(parts);
    }
  }
  if (settings_.notify) {
    a["note"] = notification(job);
  }
  return a.dump(-1, ' ', false, Json::error_handler_t::replace);
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
    fail(job, "applying " + job->change.event_type + " for productId=" + job->change.product_id, r);
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
