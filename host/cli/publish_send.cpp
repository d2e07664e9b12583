// evhctl publish's sending and report (see publish_send.h).
#include "cli/publish_send.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "cli/errors.h"

namespace evh::cli::publish {
namespace {

constexpr size_t kPipelineChunk = 1000;

std::string plural(long long n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

void send(SyncRedis& redis, Messages& messages, Checker& checker, Signer* signer, const Options& o, bool sharded,
          const std::string& logical, const std::string& key, Tally& t) {
  std::vector<std::vector<std::string>> chunk;
  for (size_t sent = 0; sent < o.count;) {
    chunk.clear();
    while (sent + chunk.size() < o.count && chunk.size() < kPipelineChunk) {
      std::string event_id;
      std::string message = messages.make(event_id);
      checker.check(message, logical, key);
      if (signer != nullptr) {
        message = signer->sign(message, event_id);
      }
      if (o.count == 1) {
        t.event_id = event_id;
      }
      chunk.push_back(o.stream ? std::vector<std::string>{"XADD", key, "*", "event", std::move(message)}
                               : std::vector<std::string>{sharded ? "SPUBLISH" : "PUBLISH", key, std::move(message)});
    }
    std::vector<ReplyPtr> replies;
    try {
      replies = redis.pipeline(chunk);
    } catch (const Failure& f) {
      throw Failure(std::string(f.what()) +
                    (sent > 0 ? " (the first " + std::to_string(sent) + " of " + std::to_string(o.count) +
                                    " were sent; the rest may or may not have been)"
                              : std::string()));
    }
    for (const auto& r : replies) {
      if (r->type == REDIS_REPLY_ERROR) {
        if (t.failed++ == 0) {
          t.first_error = chunk.front()[0] + " " + key + ": " + replyText(r.get());
        }
      } else if (o.stream && r->type == REDIS_REPLY_STRING) {
        ++t.ok;
        t.last_entry = replyText(r.get());
        if (t.first_entry.empty()) {
          t.first_entry = t.last_entry;
        }
      } else if (!o.stream && r->type == REDIS_REPLY_INTEGER) {
        ++t.ok;
        t.min_receivers = t.min_receivers < 0 ? r->integer : std::min(t.min_receivers, r->integer);
        t.max_receivers = std::max(t.max_receivers, r->integer);
      } else if (t.failed++ == 0) {
        t.first_error = chunk.front()[0] + " " + key + ": unexpected reply type " + std::to_string(r->type);
      }
    }
    sent += chunk.size();
  }
}

void report(const Options& o, const std::string& key, const Tally& t) {
  std::string id = t.event_id.empty() ? std::string() : " (eventId " + t.event_id + ")";
  if (t.ok > 0 && o.stream) {
    if (o.count == 1) {
      std::printf("added to %s: %s%s\n", key.c_str(), t.first_entry.c_str(), id.c_str());
    } else {
      std::printf("added %s to %s: %s .. %s\n", plural(static_cast<long long>(t.ok), "entry", "entries").c_str(),
                  key.c_str(), t.first_entry.c_str(), t.last_entry.c_str());
    }
  } else if (t.ok > 0) {
    if (o.count == 1) {
      std::printf("published to %s: %s%s\n", key.c_str(), plural(t.max_receivers, "receiver", "receivers").c_str(),
                  id.c_str());
    } else if (t.min_receivers == t.max_receivers) {
      std::printf("published %s to %s: %s each\n", plural(static_cast<long long>(t.ok), "event", "events").c_str(),
                  key.c_str(), plural(t.max_receivers, "receiver", "receivers").c_str());
    } else {
      std::printf("published %s to %s: %lld to %lld receivers each\n",
                  plural(static_cast<long long>(t.ok), "event", "events").c_str(), key.c_str(), t.min_receivers,
                  t.max_receivers);
    }
    if (t.min_receivers == 0) {
      std::fflush(stdout);
      std::fprintf(stderr,
                   "warning: %s reached nobody subscribed to %s (is evhost running?); Pub/Sub keeps nothing, so %s "
                   "gone\n",
                   o.count == 1 ? "the event" : "some events", key.c_str(), o.count == 1 ? "it is" : "they are");
    }
  }
}

}  // namespace evh::cli::publish
