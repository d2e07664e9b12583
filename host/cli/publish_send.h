// evhctl publish's sending: the messages pipelined in chunks (PUBLISH or XADD), the replies tallied, and the one-line
// report of what happened.
#pragma once

#include <cstddef>
#include <string>

#include "cli/publish_message.h"
#include "cli/publish_options.h"
#include "cli/publish_sign.h"
#include "cli/sync_redis.h"

namespace evh::cli::publish {

struct Tally {
  size_t ok = 0;
  size_t failed = 0;
  std::string first_error;
  long long min_receivers = -1;  // Pub/Sub
  long long max_receivers = 0;
  std::string first_entry;  // streams
  std::string last_entry;
  std::string event_id;  // of a single event
};

// Makes, checks (and with `signer`, signs) and sends o.count messages to
// `key` (`logical` without the environment prefix), tallying the replies in `t`.
// `sharded`: the config marks the channel sharded: SPUBLISH, not PUBLISH.
void send(SyncRedis& redis, Messages& messages, Checker& checker, Signer* signer, const Options& o, bool sharded,
          const std::string& logical, const std::string& key, Tally& t);

// Prints what was sent where (stdout), and a warning when nobody received a Pub/Sub message (stderr).
void report(const Options& o, const std::string& key, const Tally& t);

}  // namespace evh::cli::publish
