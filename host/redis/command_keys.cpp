// The key of a command, from a table of what evhost sends and from the
// cluster's COMMAND reply.
#include "redis/command_keys.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <initializer_list>
#include <utility>

namespace evh::redis {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool equalsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// A small non-negative decimal argument (numkeys), or -1.
long smallNumber(std::string_view s) {
  if (s.empty() || s.size() > 9) {
    return -1;
  }
  long n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') {
      return -1;
    }
    n = n * 10 + (c - '0');
  }
  return n;
}

}  // namespace

CommandKeys::CommandKeys() {
  // What evhost, its bundled plugins and most handlers send; the cluster's
  // COMMAND reply teaches the rest.
  for (const char* name :
       {"get",      "set",     "setex",     "psetex", "setnx", "getdel", "getex",    "del",        "unlink",
        "exists",   "expire",  "pexpire",   "ttl",    "pttl",  "type",   "incr",     "incrby",     "decr",
        "decrby",   "append",  "mget",      "mset",   "hset",  "hget",   "hmget",    "hmset",      "hdel",
        "hgetall",  "hincrby", "hexists",   "hlen",   "lpush", "rpush",  "lpop",     "rpop",       "lrange",
        "llen",     "ltrim",   "lrem",      "lindex", "sadd",  "srem",   "smembers", "sismember",  "scard",
        "zadd",     "zrem",    "zrange",    "zscore", "zcard", "xadd",   "xack",     "xautoclaim", "xclaim",
        "xpending", "xrange",  "xrevrange", "xlen",   "xdel",  "xtrim",  "spublish"}) {
    first_key_[name] = 1;
  }
  first_key_["xgroup"] = 2;  // XGROUP CREATE key group ...
  first_key_["xinfo"] = 2;   // XINFO GROUPS key
  for (const char* name : {"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"}) {
    first_key_[name] = static_cast<int>(Rule::NumKeys);
  }
  first_key_["xread"] = static_cast<int>(Rule::Streams);
  first_key_["xreadgroup"] = static_cast<int>(Rule::Streams);
  for (const char* name : {"ping", "echo", "publish", "info", "script", "function", "client", "command", "cluster",
                           "hello", "auth", "role", "time", "asking"}) {
    first_key_[name] = static_cast<int>(Rule::NoKey);
  }
}

int CommandKeys::keyIndex(int argc, const char* const* argv, const size_t* lens) const {
  if (argc < 1) {
    return kAnyNode;
  }
  const auto it = first_key_.find(lower(std::string_view(argv[0], lens[0])));
  if (it == first_key_.end()) {
    return kAnyNode;
  }
  switch (it->second) {
    case static_cast<int>(Rule::NumKeys): {
      if (argc < 4) {
        return kAnyNode;
      }
      const long numkeys = smallNumber(std::string_view(argv[2], lens[2]));
      return numkeys > 0 ? 3 : kAnyNode;
    }
    case static_cast<int>(Rule::Streams):
      for (int i = 1; i + 1 < argc; ++i) {
        if (equalsNoCase(std::string_view(argv[i], lens[i]), "streams")) {
          return i + 1;
        }
      }
      return kAnyNode;
    default:
      return it->second > 0 && it->second < argc ? it->second : kAnyNode;
  }
}

std::string CommandKeys::learn(const redisReply* reply) {
  if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY) {
    return "COMMAND: expected an array of commands";
  }
  std::unordered_map<std::string, int> learned;
  for (size_t i = 0; i < reply->elements; ++i) {
    const redisReply* cmd = reply->element[i];
    if (cmd == nullptr || cmd->type != REDIS_REPLY_ARRAY || cmd->elements < 6) {
      return "COMMAND: entry " + std::to_string(i) + " is not [name, arity, flags, first key, last key, step, ...]";
    }
    const redisReply* name = cmd->element[0];
    const redisReply* first = cmd->element[3];
    if (name == nullptr || (name->type != REDIS_REPLY_STRING && name->type != REDIS_REPLY_STATUS) || first == nullptr ||
        first->type != REDIS_REPLY_INTEGER) {
      return "COMMAND: entry " + std::to_string(i) + " has no name or no integer first key";
    }
    // A first key of 0 (none, or keys found by parsing the arguments --
    // "movablekeys" -- or a container of subcommands) leaves the command
    // to any node; the redirect corrects it.
    if (first->integer > 0 && first->integer < 1000) {
      learned[lower(std::string_view(name->str, name->len))] = static_cast<int>(first->integer);
    }
  }
  for (auto& [name, index] : learned) {
    if (first_key_.emplace(name, index).second) {  // the table's own rules win
      ++learned_;
    }
  }
  return "";
}

}  // namespace evh::redis
