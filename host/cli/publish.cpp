// evhctl publish: envelope a payload (or take an envelope as is), check it with evhost's decoder, PUBLISH or XADD it.
#include "cli/publish.h"

#include <algorithm>

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/command_line.h"
#include "cli/config_file.h"
#include "cli/errors.h"
#include "cli/publish_message.h"
#include "cli/publish_options.h"
#include "cli/publish_send.h"
#include "cli/sync_redis.h"
#include "config/config.h"

namespace evh::cli {

namespace publish {
namespace {

constexpr size_t kMaxCount = 10000000;

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
                     ": name one with --channel NAME");
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

// A signed message to a channel that verifies none, or the other way round,
// is refused by evhost: say so before sending.
void warnAboutSigning(const Options& o, const config::Config& cfg, const std::string& logical) {
  for (const auto& ch : cfg.channels) {
    if (ch.name != logical || ch.pattern) {
      continue;
    }
    if (ch.signature.enabled && !o.sign) {
      std::fprintf(stderr,
                   "warning: channel %s verifies signatures (%s); evhost will refuse this unsigned message "
                   "(bad_signature): add --sign KEYFILE\n",
                   logical.c_str(), ch.signature.origin.describe().c_str());
    } else if (!ch.signature.enabled && o.sign) {
      std::fprintf(stderr,
                   "warning: channel %s does not verify signatures in %s; evhost will refuse the signed message "
                   "as not JSON\n",
                   logical.c_str(), o.config.c_str());
    }
  }
}

// The command, once its arguments and the config are read.
int run(const Options& o, const config::Config& cfg) {
  const std::string logical = pickChannel(o, cfg);
  const std::string key = cfg.prefix() + logical;
  auto [text, where] = readMessage(o);
  Messages messages(o, text, where);
  Checker checker(cfg);
  std::optional<Signer> signer;
  if (o.sign) {
    signer.emplace(*o.sign);
  }
  warnAboutSigning(o, cfg, logical);
  SyncRedis redis(cfg.redis);
  Tally t;
  const bool sharded = std::any_of(cfg.channels.begin(), cfg.channels.end(), [&](const config::Channel& ch) {
    return ch.name == logical && ch.sharded && ch.transport == config::Transport::PubSub;
  });
  send(redis, messages, checker, signer ? &*signer : nullptr, o, sharded, logical, key, t);
  report(o, key, t);
  if (t.failed > 0) {
    throw Failure(std::to_string(t.failed) + " of " + std::to_string(o.count) + " failed; the first: " + t.first_error);
  }
  return 0;
}

// Loads the config and runs the command.
int runPublish(const Options& o) {
  const std::optional<config::Config> loaded = loadConfigOrReport(o.config);
  if (!loaded) {
    return 1;
  }
  try {
    return run(o, *loaded);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "evhctl: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "evhctl: %s\n", e.what());
    return 1;
  }
}

// The message's source, once the options are read.
void pickSource(Options& o, const std::optional<std::string>& file, const std::optional<std::string>& payload,
                bool dash) {
  if (file) {
    o.source = *file == "-" ? Source::Stdin : Source::File;
    o.source_arg = *file;
  } else if (payload) {
    o.source = Source::Payload;
    o.source_arg = *payload;
  } else if (dash) {
    o.source = Source::Stdin;
    o.source_arg = "-";
  } else if (isatty(STDIN_FILENO) != 0) {
    badArguments("publish needs a message: --payload JSON, --file FILE, or - to read stdin");
  } else {
    o.source = Source::Stdin;  // a pipe or a file
  }
}

}  // namespace
}  // namespace publish

void addPublish(CLI::App& app, Command& chosen) {
  using publish::Options;
  struct Given {
    Options o;
    std::optional<std::string> file;
    std::optional<std::string> payload;
    std::string dash;
  };
  auto g = std::make_shared<Given>();
  Options& o = g->o;
  CLI::App* cmd =
      app.add_subcommand("publish", "Send an event as any publisher would: PUBLISH, or XADD to a stream (--stream)");
  cmd->add_option("-c,--config", o.config, "The YAML evhost runs with")->type_name("FILE")->envname("EVH_CONFIG");
  cmd->add_flag("--stream", o.stream, "XADD <env>:NAME * event JSON (prints the entry id), not PUBLISH")
      ->disable_flag_override();
  cmd->add_option("--channel", o.channel, "The logical channel (default: the config's first of that transport)")
      ->type_name("NAME")
      ->check(nonEmpty());
  cmd->add_option("--type", o.type, "eventType of the new envelope around a payload (required for one)")
      ->type_name("TYPE")
      ->check(nonEmpty());
  cmd->add_option("--id", o.id, "eventId of the new envelope (default: a random UUID)")
      ->type_name("ID")
      ->check(nonEmpty());
  cmd->add_option("--correlation-id", o.correlation_id, "correlationId of the new envelope")
      ->type_name("ID")
      ->check(nonEmpty());
  cmd->add_option(
         "--count", o.count,
         "Send it N times (1 to " + std::to_string(publish::kMaxCount) + ", pipelined), each with a fresh eventId")
      ->type_name("N")
      ->check(CLI::Range(size_t{1}, publish::kMaxCount).description(""));
  cmd->add_option("--sign", o.sign,
                  "Sign each message with the key in KEYFILE (whsec_<base64>, private to its owner): "
                  "Standard Webhooks headers, webhook-id the eventId")
      ->type_name("KEYFILE")
      ->check(nonEmpty());
  CLI::Option* file = cmd->add_option("--file", g->file, "Read the message from FILE (- : stdin)")
                          ->type_name("FILE")
                          ->check(nonEmpty());
  CLI::Option* payload = cmd->add_option("--payload", g->payload, "The message itself")->type_name("JSON");
  cmd->add_option("STDIN", g->dash, "- : read the message from stdin (so does a pipe, without --file or --payload)")
      ->type_name("-")
      ->check(CLI::Validator(
          [](const std::string& v) {
            return v == "-" ? ""
                            : "unexpected argument \"" + v + "\" (a message goes in --payload JSON, --file FILE or -)";
          },
          ""))
      ->excludes(file)
      ->excludes(payload);
  file->excludes(payload);
  cmd->footer(
      "NAME is logical (the environment prefix is added). PUBLISH prints how many received the event.\n"
      "The JSON goes out as is when it is an envelope (it has eventType or specversion, or is a BATCH);\n"
      "otherwise it becomes the payload of {eventId: ID or a random UUID, eventType: TYPE, timestamp: now,\n"
      "correlationId: ID if given, payload}. evhost's own decoder checks every message first: what evhost\n"
      "would refuse is not sent.\n"
      "Exit status: 0 sent, 1 failed (the reason on stderr), 2 bad arguments.");
  cmd->callback([g, &chosen] {
    Options& given = g->o;
    if (given.id && given.count > 1) {
      badArguments("--id names one event; --count " + std::to_string(given.count) + " sends each with a fresh eventId");
    }
    publish::pickSource(given, g->file, g->payload, !g->dash.empty());
    if (given.config.empty()) {
      badArguments("publish needs the evhost configuration: --config FILE (or EVH_CONFIG)");
    }
    chosen = [g] { return publish::runPublish(g->o); };
  });
}

}  // namespace evh::cli
