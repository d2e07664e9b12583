// evhctl publish: envelope a payload (or take an envelope as is), check it with evhost's decoder, PUBLISH or XADD it.
#include "cli/publish.h"

#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "cli/config_file.h"
#include "cli/errors.h"
#include "cli/publish_message.h"
#include "cli/publish_options.h"
#include "cli/publish_send.h"
#include "cli/sync_redis.h"
#include "config/config.h"

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

namespace publish {
namespace {

constexpr size_t kMaxCount = 10000000;

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

// The command, once its arguments and the config are read.
int run(const Options& o, const config::Config& cfg) {
  const std::string logical = pickChannel(o, cfg);
  const std::string key = cfg.prefix() + logical;
  auto [text, where] = readMessage(o);
  Messages messages(o, text, where);
  Checker checker(cfg);
  SyncRedis redis(cfg.redis);
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
}  // namespace publish

int runPublish(const std::vector<std::string>& args) {
  publish::Options o;
  try {
    o = publish::parseArgs(args);
  } catch (const UsageError& e) {
    return publish::usageError(e);
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
    return publish::run(o, *loaded);
  } catch (const UsageError& e) {
    return publish::usageError(e);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "evhctl: %s\n", e.what());
    return 1;
  }
}

}  // namespace evh::cli
