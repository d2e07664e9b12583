// Where the ids of signed messages already delivered are remembered (Redis,
// shared by every instance): the replay check of signed channels.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace evh::ingest {

class SeenIds {
 public:
  // What a claim found.
  enum class Claim {
    First,   // the id was not marked: it is now, with `value`
    Same,    // marked with this very value (the same stream entry, delivered again)
    Other,   // marked with another value
    Failed,  // Redis answered with an error (the detail says which)
    Lost,    // no answer: the connection dropped or the client stopped
  };
  virtual ~SeenIds() = default;
  // Marks `key` with `value` for ttl_ms unless it is marked, and says what
  // it found. Returns false (cb never runs) when the request cannot be sent.
  // THREAD: loop.
  virtual bool claim(const std::string& key, const std::string& value, uint64_t ttl_ms,
                     std::function<void(Claim, const std::string& detail)> cb) = 0;
};

}  // namespace evh::ingest
