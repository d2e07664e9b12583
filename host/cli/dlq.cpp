// evhctl dlq: the operator's view of the dead-letter list, over a synchronous Redis connection (a CLI may block).
#include "cli/dlq.h"
#include "cli/command_line.h"
#include "cli/config_file.h"
#include "cli/dlq_entry.h"
#include "cli/sync_redis.h"

#include "config/config.h"

#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>

#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace evh::cli {

namespace {
// Named too: evhctl is compiled in unity batches (host/CMakeLists.txt),
// where each command's Options and run() would meet the others'.
namespace dlq_command {

using dlq::dump;
using dlq::Entry;
using dlq::field;
using dlq::Json;
using dlq::matches;

constexpr const char* kDefaultKey = "jollyjet:events:dlq";
constexpr size_t kDefaultLimit = 20;

struct Options {
  std::string config;
  std::string command;  // list, show, remove, replay or purge
  std::string id;       // EVENTID of show, remove, replay
  size_t limit = kDefaultLimit;
  bool all = false;
  std::optional<std::string> reason;
  bool yes = false;
};

// ---- Redis ---------------------------------------------------------------------

using Redis = SyncRedis;

// ---- entries -------------------------------------------------------------------

struct Listing {
  std::vector<Entry> entries;  // newest first
  size_t corrupt = 0;          // elements that are not a JSON object (or too deep: dlq_entry.h)
};

Listing fetch(Redis& redis, const std::string& key, long long stop) {
  ReplyPtr r = redis.must({"LRANGE", key, "0", std::to_string(stop)});
  if (r->type != REDIS_REPLY_ARRAY) {
    throw Failure("LRANGE " + key + ": unexpected reply type " + std::to_string(r->type));
  }
  Listing out;
  for (size_t i = 0; i < r->elements; ++i) {
    const redisReply* e = r->element[i];
    if (e->type != REDIS_REPLY_STRING) {
      ++out.corrupt;
      continue;
    }
    std::optional<Entry> entry = dlq::parseEntry(replyText(e));
    if (!entry) {
      ++out.corrupt;
      continue;
    }
    out.entries.push_back(std::move(*entry));
  }
  return out;
}

std::vector<const Entry*> findEntries(const Listing& l, const std::string& id) {
  std::vector<const Entry*> out;
  for (const auto& e : l.entries) {
    if (matches(e, id)) {
      out.push_back(&e);
    }
  }
  return out;
}

void warnCorrupt(size_t corrupt) {
  if (corrupt > 0) {
    std::fprintf(stderr, "warning: %zu entr%s of the dead-letter list %s not valid JSON (skipped)\n", corrupt,
                 corrupt == 1 ? "y" : "ies", corrupt == 1 ? "is" : "are");
  }
}

std::string plural(long long n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// ---- commands ------------------------------------------------------------------

int cmdList(Redis& redis, const std::string& key, size_t limit) {
  long long total = redis.integer({"LLEN", key});
  Listing l = fetch(redis, key, static_cast<long long>(limit) - 1);
  warnCorrupt(l.corrupt);
  if (l.entries.empty()) {
    if (l.corrupt == 0) {
      std::puts("(empty)");
    }
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {{"TIME", "EVENT ID", "EVENT TYPE", "PLUGIN", "REASON"}};
  for (const auto& e : l.entries) {
    rows.push_back(dlq::listRow(e));
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) {
      width[c] = std::max(width[c], row[c].size());
    }
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) {
        line.append(width[c] - row[c].size() + 2, ' ');
      }
    }
    std::puts(line.c_str());
  }
  size_t shown = l.entries.size() + l.corrupt;
  if (total > static_cast<long long>(shown)) {
    std::printf("(%zu of %lld entries; --limit N shows more)\n", shown, total);
  }
  return 0;
}

int cmdShow(Redis& redis, const std::string& key, const std::string& id) {
  Listing l = fetch(redis, key, -1);
  std::vector<const Entry*> found = findEntries(l, id);
  if (found.empty()) {
    throw Failure("no dead-letter entry with eventId " + id);
  }
  for (const Entry* e : found) {
    std::puts(dump(e->json, 2).c_str());
  }
  return 0;
}

int cmdRemove(Redis& redis, const std::string& key, const std::string& id) {
  Listing l = fetch(redis, key, -1);
  std::vector<const Entry*> found = findEntries(l, id);
  if (found.empty()) {
    throw Failure("no dead-letter entry with eventId " + id);
  }
  long long removed = 0;
  for (const Entry* e : found) {
    // The exact stored value, once per entry found: an identical duplicate
    // is a separate entry and found separately.
    removed += redis.integer({"LREM", key, "1", e->text});
  }
  if (removed == 0) {
    throw Failure("the dead-letter entries with eventId " + id + " were removed meanwhile");
  }
  std::printf("removed %s with eventId %s\n", plural(removed, "entry", "entries").c_str(), id.c_str());
  return 0;
}

// Re-publishes one entry's original event, then deletes the entry. Returns
// the line to print and whether it succeeded.
// The channels (with prefix) the config marks sharded: replayed with SPUBLISH.
std::set<std::string> shardedChannels(const config::Config& cfg) {
  std::set<std::string> out;
  for (const auto& ch : cfg.channels) {
    if (ch.sharded && ch.transport == config::Transport::PubSub) {
      out.insert(cfg.prefix() + ch.name);
    }
  }
  return out;
}

std::pair<bool, std::string> replayOne(Redis& redis, const std::string& key, const std::string& prefix,
                                       const std::set<std::string>& sharded, const Entry& e) {
  const std::string label = dlq::replayLabel(e);
  auto fail = [&](const std::string& why) { return std::make_pair(false, "failed   " + label + ": " + why); };
  const dlq::ReplayPlan plan = dlq::replayPlan(e, prefix);
  if (!plan.error.empty()) {
    return fail(plan.error);
  }
  const std::string& channel = plan.channel;
  const std::string& message = plan.message;
  try {
    const char* publish = sharded.count(channel) > 0 ? "SPUBLISH" : "PUBLISH";
    ReplyPtr r = redis.run({publish, channel, message});
    if (r->type == REDIS_REPLY_ERROR) {
      return fail(std::string(publish) + " " + channel + ": " + replyText(r.get()) + "; kept");
    }
    if (r->type != REDIS_REPLY_INTEGER || r->integer <= 0) {
      // Pub/Sub keeps nothing: with nobody subscribed the event would be
      // gone, so the entry stays.
      return fail("nobody is subscribed to " + channel + " (is evhost running?); kept");
    }
    long long receivers = r->integer;
    ReplyPtr rem = redis.run({"LREM", key, "1", e.text});
    if (rem->type == REDIS_REPLY_ERROR) {
      return fail("published on " + channel + ", but removing the entry failed: " + replyText(rem.get()));
    }
    return {true, "replayed " + label + " on " + channel + " (" + plural(receivers, "receiver", "receivers") + "); " +
                      (rem->integer > 0 ? "removed" : "already removed")};
  } catch (const Failure& f) {
    return fail(std::string(f.what()) + "; kept");
  }
}

int cmdReplay(Redis& redis, const std::string& key, const config::Config& cfg, const Options& o) {
  const std::string prefix = cfg.prefix();
  const std::set<std::string> sharded = shardedChannels(cfg);
  Listing l = fetch(redis, key, -1);
  std::vector<const Entry*> chosen;
  // Oldest first, so that events go out again in the order they first came.
  for (auto it = l.entries.rbegin(); it != l.entries.rend(); ++it) {
    if ((o.all || matches(*it, o.id)) && (!o.reason || field(it->json, "reason") == *o.reason)) {
      chosen.push_back(&*it);
    }
  }
  if (chosen.empty()) {
    std::string what = o.all ? "no dead-letter entries" : "no dead-letter entry with eventId " + o.id;
    throw Failure(what + (o.reason ? (o.all ? " with reason " : " and reason ") + *o.reason : std::string()));
  }
  size_t ok = 0;
  for (const Entry* e : chosen) {
    auto [done, line] = replayOne(redis, key, prefix, sharded, *e);
    ok += done ? 1 : 0;
    std::puts(line.c_str());
  }
  size_t failed = chosen.size() - ok;
  std::printf("%zu replayed, %zu failed\n", ok, failed);
  return failed == 0 ? 0 : 1;
}

int cmdPurge(Redis& redis, const std::string& key) {
  long long n = redis.integer({"LLEN", key});
  redis.must({"DEL", key});
  std::printf("purged %s: %s deleted\n", key.c_str(), plural(n, "entry", "entries").c_str());
  return 0;
}

// <prefix><key>, key from the dead-letter plugin's config.
std::string dlqKey(const config::Config& cfg) {
  std::string logical = kDefaultKey;
  if (!cfg.dead_letter.plugin.empty()) {
    for (const auto& p : cfg.plugins) {
      if (p.name != cfg.dead_letter.plugin) {
        continue;
      }
      Json j = Json::parse(p.config_json, nullptr, false);
      if (j.is_object() && j.contains("key")) {
        const Json& k = j["key"];
        if (!k.is_string() || k.get_ref<const std::string&>().empty()) {
          throw Failure(p.origin.describe() + ": config key \"key\" of plugin " + p.name +
                        " must be a non-empty string");
        }
        logical = k.get<std::string>();
      }
    }
  }
  return cfg.prefix() + logical;
}

int run(const Options& o) {
  const std::optional<config::Config> loaded = loadConfigOrReport(o.config);
  if (!loaded) {
    return 1;
  }
  const config::Config& cfg = *loaded;
  try {
    std::string key = dlqKey(cfg);
    Redis redis(cfg.redis);
    const std::string& c = o.command;
    if (c == "list") {
      return cmdList(redis, key, o.limit);
    }
    if (c == "show") {
      return cmdShow(redis, key, o.id);
    }
    if (c == "remove") {
      return cmdRemove(redis, key, o.id);
    }
    if (c == "replay") {
      return cmdReplay(redis, key, cfg, o);
    }
    return cmdPurge(redis, key);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "evhctl: %s\n", e.what());
    return 1;
  }
}

}  // namespace dlq_command
}  // namespace

void addDlq(CLI::App& app, Command& chosen) {
  using namespace dlq_command;
  auto o = std::make_shared<Options>();
  CLI::App* dlq = app.add_subcommand("dlq", "The dead-letter list: list, show, remove, replay, purge");
  dlq->add_option("-c,--config", o->config, "The YAML evhost runs with")->type_name("FILE")->envname("EVH_CONFIG");
  dlq->footer(
      "The list is <environment>:<key> in the Redis of FILE, key from the dead_letter plugin's config (default\n"
      "jollyjet:events:dlq). EVENTID is an entry's eventId, or its own id.\n"
      "Exit status: 0 done, 1 failed (the reason on stderr), 2 bad arguments.");
  // Each command; --config goes before or after it (fallthrough to dlq).
  auto command = [&](const char* name, const char* what) {
    CLI::App* c = dlq->add_subcommand(name, what);
    c->fallthrough();
    c->callback([o, &chosen, name] {
      o->command = name;
      chosen = [o] { return run(*o); };
    });
    return c;
  };
  const std::string id_help = "An entry's eventId (or its own id)";
  command("list", "The newest N entries, newest first: time, eventId, eventType, plugin, reason")
      ->add_option("--limit", o->limit, "How many: 1 to 999999999 (default 20)")
      ->type_name("N")
      ->check(CLI::Range(size_t{1}, size_t{999999999}).description(""));
  command("show", "Print every entry with that EVENTID as JSON")->add_option("EVENTID", o->id, id_help)->required();
  command("remove", "Delete the entries with that EVENTID")->add_option("EVENTID", o->id, id_help)->required();
  CLI::App* replay =
      command("replay", "Publish entries' original events again, oldest first; delete each once a subscriber got it");
  CLI::Option* all = replay->add_flag("--all", o->all, "Every entry (with --reason: every entry with that reason)");
  CLI::Option* id = replay->add_option("EVENTID", o->id, id_help)->excludes(all);
  replay->add_option("--reason", o->reason, "Only the entries with this reason")->type_name("R");
  replay->callback([o, &chosen, id] {
    if (!o->all && id->count() == 0) {
      badArguments("dlq replay needs either one EVENTID or --all");
    }
    o->command = "replay";
    chosen = [o] { return run(*o); };
  });
  CLI::App* purge = command("purge", "Delete the whole dead-letter list (with --yes)");
  purge->add_flag("--yes", o->yes, "Yes, delete every entry");
  purge->callback([o, &chosen] {
    if (!o->yes) {
      badArguments("dlq purge deletes every dead-letter entry; run it with --yes to do so");
    }
    o->command = "purge";
    chosen = [o] { return run(*o); };
  });
  dlq->callback([o, dlq] {
    if (dlq->get_subcommands().empty()) {
      badArguments("dlq needs a command: list, show, remove, replay or purge");
    }
    if (o->config.empty()) {
      badArguments("dlq needs the evhost configuration: --config FILE (or EVH_CONFIG)");
    }
  });
}

}  // namespace evh::cli
