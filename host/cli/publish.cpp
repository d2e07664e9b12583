// evhctl publish: envelope a payload (or take an envelope as is), check it with evhost's decoder, PUBLISH or XADD it.
#include "cli/publish.h"
#include "cli/config_file.h"
#include "cli/sync_redis.h"

#include "config/config.h"
#include "dispatch/dead_letter.h"
#include "event/envelope.h"

#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>

#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace evh::cli {

const char* const kPublishUsage =
    "  publish [--config FILE] [--stream] [--channel NAME] [--type TYPE] [--id ID]\n"
    "          [--correlation-id ID] [--count N] [--file FILE | --payload JSON | -]\n"
    "                                           send an event as any publisher would: PUBLISH <env>:NAME JSON\n"
    "                                           (prints how many received it), or with --stream\n"
    "                                           XADD <env>:NAME * event JSON (prints the entry id). NAME is\n"
    "                                           logical; default: the config's first channel of that transport.\n"
    "                                           The JSON (from FILE, from JSON, or from stdin with - or a pipe)\n"
    "                                           goes out as is when it is an envelope (it has eventType or\n"
    "                                           specversion, or is a BATCH); otherwise it becomes the payload of\n"
    "                                           {eventId: ID or a random UUID, eventType: TYPE (then required),\n"
    "                                           timestamp: now, correlationId: ID if given, payload}. --count N\n"
    "                                           sends it N times (pipelined), each with a fresh eventId. evhost's\n"
    "                                           own decoder checks the message first: what evhost would refuse\n"
    "                                           is not sent.\n";

namespace {

// ordered_json keeps an envelope's key order when --count rewrites its ids.
using Json = nlohmann::ordered_json;

constexpr size_t kMaxCount = 10000000;
constexpr size_t kPipelineChunk = 1000;

enum class Source { None, File, Payload, Stdin };

struct Options {
  std::string config;
  bool stream = false;
  std::optional<std::string> channel;
  std::optional<std::string> type;
  std::optional<std::string> id;
  std::optional<std::string> correlation_id;
  size_t count = 1;
  Source source = Source::None;
  std::string source_arg;  // the file name, or the --payload JSON
  bool help = false;
};

size_t parseCount(const std::string& s) {
  if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) {
    throw UsageError("--count needs a positive integer, got \"" + s + "\"");
  }
  size_t n = std::stoul(s);
  if (n == 0 || n > kMaxCount) {
    throw UsageError("--count needs an integer from 1 to " + std::to_string(kMaxCount) + ", got \"" + s + "\"");
  }
  return n;
}

Options parseArgs(const std::vector<std::string>& args) {
  Options o;
  auto setSource = [&](Source s, std::string arg) {
    if (o.source != Source::None) {
      throw UsageError("give the message once: --file FILE, --payload JSON or -");
    }
    o.source = s;
    o.source_arg = std::move(arg);
  };
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    std::optional<std::string> attached;  // --name=value
    if (a.rfind("--", 0) == 0) {
      if (size_t eq = a.find('='); eq != std::string::npos) {
        attached = a.substr(eq + 1);
        a.resize(eq);
      }
    }
    auto value = [&]() -> std::string {
      if (attached) {
        return *attached;
      }
      if (i + 1 >= args.size()) {
        throw UsageError(a + " needs a value");
      }
      return args[++i];
    };
    auto text = [&]() -> std::string {
      std::string v = value();
      if (v.empty()) {
        throw UsageError(a + " needs a non-empty value");
      }
      return v;
    };
    auto flag = [&] {
      if (attached) {
        throw UsageError(a + " takes no value");
      }
    };
    if (a == "--config" || a == "-c") {
      o.config = value();
    } else if (a == "--stream") {
      flag();
      o.stream = true;
    } else if (a == "--channel") {
      o.channel = text();
    } else if (a == "--type") {
      o.type = text();
    } else if (a == "--id") {
      o.id = text();
    } else if (a == "--correlation-id") {
      o.correlation_id = text();
    } else if (a == "--count") {
      o.count = parseCount(value());
    } else if (a == "--file") {
      std::string f = text();
      setSource(f == "-" ? Source::Stdin : Source::File, f);
    } else if (a == "--payload") {
      setSource(Source::Payload, value());
    } else if (a == "-") {
      setSource(Source::Stdin, "-");
    } else if (a == "--help" || a == "-h") {
      flag();
      o.help = true;
    } else if (a.size() > 1 && a[0] == '-') {
      throw UsageError("unknown option \"" + a + "\"");
    } else {
      throw UsageError("unexpected argument \"" + a + "\" (a message goes in --payload JSON, --file FILE or -)");
    }
  }
  if (o.help) {
    return o;
  }
  if (o.id && o.count > 1) {
    throw UsageError("--id names one event; --count " + std::to_string(o.count) + " sends each with a fresh eventId");
  }
  if (o.source == Source::None) {
    if (isatty(STDIN_FILENO) != 0) {
      throw UsageError("publish needs a message: --payload JSON, --file FILE, or - to read stdin");
    }
    o.source = Source::Stdin;  // a pipe or a file
  }
  if (o.config.empty()) {
    if (const char* env = std::getenv("EVH_CONFIG"); env != nullptr) {
      o.config = env;
    }
  }
  if (o.config.empty()) {
    throw UsageError("publish needs the evhost configuration: --config FILE (or EVH_CONFIG)");
  }
  return o;
}

// ---- the message ---------------------------------------------------------------

std::string trim(const std::string& s) {
  const char* ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) {
    return {};
  }
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// The message's text, and how to name where it came from in errors.
std::pair<std::string, std::string> readMessage(const Options& o) {
  switch (o.source) {
    case Source::Payload:
      return {o.source_arg, "the JSON given with --payload"};
    case Source::File: {
      std::ifstream in(o.source_arg, std::ios::binary);
      if (!in) {
        throw Failure("cannot read " + o.source_arg + ": " + std::strerror(errno));
      }
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (in.bad()) {
        throw Failure("cannot read " + o.source_arg + ": " + std::strerror(errno));
      }
      return {text, o.source_arg};
    }
    case Source::Stdin:
    case Source::None:
      break;
  }
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  if (std::cin.bad()) {
    throw Failure(std::string("cannot read stdin: ") + std::strerror(errno));
  }
  return {text, "the JSON read from stdin"};
}

Json parseJson(const std::string& text, const std::string& where) {
  if (text.empty()) {
    throw Failure(where + " is empty");
  }
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    // "[json.exception.parse_error.101] parse error at line 1, column 2: ..."
    std::string what = e.what();
    if (size_t p = what.find("] "); p != std::string::npos) {
      what.erase(0, p + 2);
    }
    throw Failure(where + " is not valid JSON: " + what);
  }
}

enum class Shape { Payload, Plain, Cloud, Batch };

// How evhost's decoder would take this object.
Shape shapeOf(const Json& j) {
  if (!j.is_object()) {
    return Shape::Payload;
  }
  if (auto t = j.find("type"); t != j.end() && t->is_string() && t->get_ref<const std::string&>() == "BATCH" &&
                               (j.contains("messages") || (!j.contains("eventType") && !j.contains("specversion")))) {
    return Shape::Batch;
  }
  if (j.contains("specversion")) {
    return Shape::Cloud;
  }
  return j.contains("eventType") ? Shape::Plain : Shape::Payload;
}

// Random (version 4) UUIDs.
class Uuids {
 public:
  Uuids() {
    std::random_device rd;
    rng_.seed((static_cast<uint64_t>(rd()) << 32) ^ rd());
  }
  std::string next() {
    uint64_t hi = rng_();
    uint64_t lo = rng_();
    hi = (hi & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;  // version 4
    lo = (lo & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;  // RFC 4122 variant
    char buf[40];
    std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                  static_cast<unsigned>((hi >> 16) & 0xFFFF), static_cast<unsigned>(hi & 0xFFFF),
                  static_cast<unsigned>(lo >> 48), static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFULL));
    return buf;
  }

 private:
  std::mt19937_64 rng_;
};

// Makes the messages to send: one, or --count of them with fresh ids.
class Messages {
 public:
  Messages(const Options& o, std::string text, const std::string& where) : o_(o), text_(trim(text)) {
    json_ = parseJson(text_, where);
    shape_ = shapeOf(json_);
    if (shape_ == Shape::Payload) {
      if (!json_.is_object()) {
        throw Failure(where + " must be a JSON object (the event's payload, or a whole envelope), not " +
                      std::string(json_.is_array() ? "an array" : json_.type_name()));
      }
      if (!o.type) {
        throw UsageError(where +
                             " has no eventType, so it is the payload of a new envelope: give its event type "
                             "with --type TYPE",
                         false);
      }
      return;
    }
    if (o.type || o.id || o.correlation_id) {
      const char* what = shape_ == Shape::Batch ? "a BATCH" : shape_ == Shape::Cloud ? "a CloudEvent" : "an envelope";
      throw UsageError(where + " is already " + std::string(what) +
                           ", sent as is: --type, --id and --correlation-id are only for a bare payload",
                       false);
    }
  }

  // The next message to send; sets event_id to its eventId (or "" for a BATCH).
  std::string make(std::string& event_id) {
    if (shape_ == Shape::Payload) {
      event_id = o_.id ? *o_.id : uuids_.next();
      Json head = Json::object();
      head["eventId"] = event_id;
      head["eventType"] = *o_.type;
      head["timestamp"] = dispatch::isoTime(dispatch::wallMs());
      if (o_.correlation_id) {
        head["correlationId"] = *o_.correlation_id;
      }
      // The payload goes in byte for byte: numbers keep their exact text.
      std::string out = head.dump();
      out.pop_back();
      return out + ",\"payload\":" + text_ + "}";
    }
    if (o_.count == 1) {
      event_id = idOf(json_);
      return text_;
    }
    // Copies of a whole envelope: each with fresh ids, or evhost (and any
    // idempotent plugin) would see one event N times.
    Json copy = json_;
    if (shape_ == Shape::Batch) {
      if (auto m = copy.find("messages"); m != copy.end() && m->is_array()) {
        for (auto& member : *m) {
          freshId(member);
        }
      }
    } else {
      freshId(copy);
    }
    event_id = idOf(copy);
    return copy.dump();
  }

 private:
  void freshId(Json& e) {
    if (e.is_object()) {
      e[e.contains("specversion") ? "id" : "eventId"] = uuids_.next();
    }
  }
  std::string idOf(const Json& e) const {
    if (shape_ == Shape::Batch) {
      return {};
    }
    auto it = e.find(shape_ == Shape::Cloud ? "id" : "eventId");
    return it != e.end() && it->is_string() ? it->get<std::string>() : std::string();
  }

  const Options& o_;
  std::string text_;
  Json json_;
  Shape shape_ = Shape::Payload;
  Uuids uuids_;
};

// evhost's own decoder, with the deployment's limits: what it would refuse
// is not sent.
class Checker {
 public:
  explicit Checker(const config::Config& cfg) : decoder_(limits(cfg)) {}

  void check(const std::string& message, const std::string& logical, const std::string& key) {
    decoder_.decode(event::makeMessage(message, logical, key), items_);
    for (const auto& item : items_) {
      if (const auto* r = std::get_if<event::Rejected>(&item)) {
        throw Failure("evhost would refuse this message" +
                      (r->from_batch ? " (BATCH member " + std::to_string(r->batch_index) + ")" : std::string()) +
                      ": " + r->detail + " (reason=" + event::reasonCode(r->reason) + "); nothing sent");
      }
    }
  }

 private:
  static event::Decoder::Limits limits(const config::Config& cfg) {
    event::Decoder::Limits l;
    l.max_message_bytes = std::min<size_t>(cfg.limits.max_message_bytes, event::Decoder::kMaxSupportedMessageBytes);
    l.max_depth = std::min<size_t>(cfg.limits.max_json_depth, event::Decoder::kMaxSupportedDepth);
    return l;
  }

  event::Decoder decoder_;
  std::vector<event::Item> items_;
};

// ---- the channel ---------------------------------------------------------------

const char* transportName(bool stream) { return stream ? "stream" : "pubsub"; }

// The logical channel: --channel, or the config's first of that transport.
std::string pickChannel(const Options& o, const config::Config& cfg) {
  const auto want = o.stream ? config::Transport::Stream : config::Transport::PubSub;
  if (!o.channel) {
    for (const auto& ch : cfg.channels) {
      if (ch.transport == want && !ch.pattern) {
        return ch.name;
      }
    }
    throw UsageError(o.config + " has no " + (o.stream ? "stream channel (transport: stream)" : "pubsub channel") +
                         ": name one with --channel NAME",
                     false);
  }
  bool patterns = false;
  for (const auto& ch : cfg.channels) {
    patterns = patterns || ch.pattern;
    if (ch.name == *o.channel && !ch.pattern) {
      if (ch.transport != want) {
        std::fprintf(stderr,
                     "warning: channel %s is transport: %s in %s, but this sends to it as %s (%s); evhost will not "
                     "see it\n",
                     ch.name.c_str(), transportName(!o.stream), o.config.c_str(), transportName(o.stream),
                     o.stream ? "XADD" : "PUBLISH");
      }
      return *o.channel;
    }
  }
  if (o.stream || !patterns) {
    std::fprintf(stderr, "warning: %s has no %s channel %s; evhost will not see it\n", o.config.c_str(),
                 transportName(o.stream), o.channel->c_str());
  }
  return *o.channel;
}

// ---- Redis ---------------------------------------------------------------------

using Redis = SyncRedis;

std::string plural(long long n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// ---- publishing ----------------------------------------------------------------

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

void send(Redis& redis, Messages& messages, Checker& checker, const Options& o, const std::string& logical,
          const std::string& key, Tally& t) {
  std::vector<std::vector<std::string>> chunk;
  for (size_t sent = 0; sent < o.count;) {
    chunk.clear();
    while (sent + chunk.size() < o.count && chunk.size() < kPipelineChunk) {
      std::string event_id;
      std::string message = messages.make(event_id);
      checker.check(message, logical, key);
      if (o.count == 1) {
        t.event_id = event_id;
      }
      chunk.push_back(o.stream ? std::vector<std::string>{"XADD", key, "*", "event", std::move(message)}
                               : std::vector<std::string>{"PUBLISH", key, std::move(message)});
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

int publish(const Options& o, const config::Config& cfg) {
  const std::string logical = pickChannel(o, cfg);
  const std::string key = cfg.prefix() + logical;
  auto [text, where] = readMessage(o);
  Messages messages(o, text, where);
  Checker checker(cfg);
  Redis redis(cfg.redis);
  Tally t;
  send(redis, messages, checker, o, logical, key, t);
  report(o, key, t);
  if (t.failed > 0) {
    throw Failure(std::to_string(t.failed) + " of " + std::to_string(o.count) + " failed; the first: " + t.first_error);
  }
  return 0;
}

int usageError(const UsageError& e) {
  std::fprintf(stderr, "evhctl: %s\n", e.what());
  if (e.showUsage()) {
    std::fprintf(stderr, "usage:\n%s", kPublishUsage);
  }
  return 2;
}

}  // namespace

int runPublish(const std::vector<std::string>& args) {
  Options o;
  try {
    o = parseArgs(args);
  } catch (const UsageError& e) {
    return usageError(e);
  }
  if (o.help) {
    std::printf("usage:\n%s", kPublishUsage);
    return 0;
  }
  const std::optional<config::Config> loaded = loadConfigOrReport(o.config);
  if (!loaded) {
    return 1;
  }
  try {
    return publish(o, *loaded);
  } catch (const UsageError& e) {
    return usageError(e);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "evhctl: %s\n", e.what());
    return 1;
  }
}

}  // namespace evh::cli
