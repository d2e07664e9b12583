// Which argument of a command is the key that decides its Redis Cluster slot.
// A redirect (MOVED, ASK) corrects a command sent to the wrong node, so this
// only saves that round trip: it must be right for the commands evhost itself
// sends on every event, and is good for most of what plugins send.
//
// The commands evhost sends are known from the start (a table here); the
// rest are learned from the cluster's own COMMAND reply (each command's
// first key; one whose keys move with its arguments says 0 there and goes to
// any node), asked once per connection to the slot map's node. EVAL, EVALSHA, FCALL (and their _RO forms), XREAD and
// XREADGROUP name their keys in their arguments and are read that way.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>

struct redisReply;

namespace evh::redis {

class CommandKeys {
 public:
  // No key known: the command names none, or it is not known -- any node
  // may take it (and a redirect says where it belongs).
  static constexpr int kAnyNode = -1;

  CommandKeys();

  // The index in argv of the first key, or kAnyNode. Case-insensitive on the
  // command's name; never reads past argc.
  int keyIndex(int argc, const char* const* argv, const size_t* lens) const;

  // Learns every command's first key from a COMMAND reply (an array of
  // [name, arity, flags, first key, last key, step, ...]); the table's
  // entries stay. Returns "" or what was wrong with the reply (it is then
  // ignored: redirects still route every command right).
  std::string learn(const redisReply* reply);
  size_t learned() const noexcept { return learned_; }

 private:
  // What a command's name says about its first key.
  enum class Rule : int {
    NoKey = -1,
    NumKeys = -3,  // EVAL script numkeys key...: argv[3] when numkeys > 0, else no key
    Streams = -4,  // XREAD / XREADGROUP ... STREAMS key...: the argument after STREAMS
  };
  // Lower-case name -> first key's index (>= 1) or a Rule.
  std::unordered_map<std::string, int> first_key_;
  size_t learned_ = 0;
};

}  // namespace evh::redis
