// The `channels:` section: transports, stream options, routes with their event types, plugins, retry and idempotency.
#include <algorithm>
#include <string>
#include <vector>

#include "config/loader.h"

namespace evh::config {
namespace {

const std::vector<std::string> kTransports = {"pubsub", "stream"};
const std::vector<std::string> kStreamStarts = {"beginning", "new"};

}  // namespace

void Loader::readChannels(const Entry& owner) {
  forEachEntry(owner, [&](const Entry& e) { readChannel(e); });
}

void Loader::readChannel(const Entry& owner) {
  const size_t channel_index = config_.channels.size();
  Channel channel;
  channel.name = owner.key;
  channel.origin = Origin{file(), owner.key_node.Mark().line + 1, owner.path};
  if (owner.key.empty()) {
    error(owner.key_node.Mark(), "channels", "a channel name must not be empty");
  }
  bool has_routes = false;
  std::optional<YAML::Mark> stream_block;
  const bool is_map = readFields(owner, {
                                            {"transport",
                                             [&](const Entry& e) {
                                               if (std::optional<size_t> t = readChoice(e, kTransports)) {
                                                 channel.transport = *t == 0 ? Transport::PubSub : Transport::Stream;
                                               }
                                             }},
                                            {"pattern", [&](const Entry& e) { readBool(e, channel.pattern); }},
                                            {"sharded", [&](const Entry& e) { readBool(e, channel.sharded); }},
                                            {"stream",
                                             [&](const Entry& e) {
                                               stream_block = e.key_node.Mark();
                                               readStream(e, channel.stream);
                                             }},
                                            {"share", [&](const Entry& e) { readShare(e, channel); }},
                                            {"signature", [&](const Entry& e) { readSignature(e, channel.signature); }},
                                            {"routes",
                                             [&](const Entry& e) {
                                               has_routes = true;
                                               readRoutes(e, channel, channel_index);
                                             }},
                                        });
  if (is_map && !has_routes) {
    error(owner.key_node.Mark(), owner.path, "missing required key \"routes\"");
  }
  if (channel.transport == Transport::Stream && channel.pattern) {
    error(owner.key_node.Mark(), owner.path + ".pattern", "a stream channel cannot be a pattern");
  }
  if (channel.transport != Transport::Stream && !channel.share.enabled && stream_block) {
    error(*stream_block, owner.path + ".stream", "only for transport: stream, or a channel with share:");
  }
  if (channel.share.enabled && channel.transport == Transport::Stream) {
    error(owner.key_node.Mark(), owner.path + ".share",
          "only for a Pub/Sub channel (a stream's consumer group shares it already)");
  }
  if (channel.share.enabled && channel.pattern) {
    error(owner.key_node.Mark(), owner.path + ".share", "not with pattern: true (share each channel by its name)");
  }
  if (channel.sharded && channel.transport == Transport::Stream) {
    error(owner.key_node.Mark(), owner.path + ".sharded", "only for a Pub/Sub channel (transport: pubsub)");
  } else if (channel.sharded && channel.pattern) {
    error(owner.key_node.Mark(), owner.path + ".sharded",
          "not with pattern: true (sharded Pub/Sub has no patterns: SSUBSCRIBE takes channel names)");
  } else if (channel.sharded && channel.share.enabled) {
    error(owner.key_node.Mark(), owner.path + ".sharded",
          "not with share: (a shared channel is read by one elected instance over classic Pub/Sub)");
  }
  if (channel.share.enabled && channel.share.stream.empty()) {
    channel.share.stream = channel.name + ":shared";
  }
  config_.channels.push_back(std::move(channel));
}

void Loader::readShare(const Entry& owner, Channel& channel) {
  Share& s = channel.share;
  s.enabled = true;
  s.origin = Origin{file(), owner.key_node.Mark().line + 1, owner.path};
  readFields(owner, {
                        {"stream",
                         [&](const Entry& e) {
                           readString(e, s.stream);
                           if (s.stream.empty()) {
                             error(valueMark(e), e.path, "must not be empty (leave it out for <channel>:shared)");
                           } else if (s.stream == channel.name) {
                             error(valueMark(e), e.path, "must differ from the channel's own name");
                           }
                         }},
                        {"window_s", [&](const Entry& e) { readInteger(e, s.window_s, 1, 86400); }},
                        {"maxlen", [&](const Entry& e) { readInteger(e, s.maxlen, 0, UINT64_MAX >> 1); }},
                    });
}

void Loader::readStream(const Entry& owner, StreamOptions& out) {
  readFields(
      owner,
      {
          {"group", [&](const Entry& e) { readString(e, out.group); }},
          {"consumer", [&](const Entry& e) { readString(e, out.consumer); }},
          {"count", [&](const Entry& e) { readInteger(e, out.count, 1, 100000); }},
          {"block_ms", [&](const Entry& e) { readInteger(e, out.block_ms, 1, 600000); }},
          {"claim_idle_ms", [&](const Entry& e) { readInteger(e, out.claim_idle_ms, 1, 86400000); }},
          {"claim_interval_ms", [&](const Entry& e) { readInteger(e, out.claim_interval_ms, 0, 86400000); }},
          {"max_deliveries", [&](const Entry& e) { readInteger(e, out.max_deliveries, 1, 1000000); }},
          {"trim_maxlen", [&](const Entry& e) { readInteger(e, out.trim_maxlen, 0, UINT64_MAX >> 1); }},
          {"trim_max_age_ms", [&](const Entry& e) { readInteger(e, out.trim_max_age_ms, 0, uint64_t{1} << 42); }},
          {"trim_interval_ms", [&](const Entry& e) { readInteger(e, out.trim_interval_ms, 100, 86400000); }},
          {"start",
           [&](const Entry& e) {
             if (std::optional<size_t> c = readChoice(e, kStreamStarts)) {
               out.from_beginning = *c == 0;
             }
           }},
      });
  if (out.group.empty()) {
    error(owner.key_node.Mark(), owner.path + ".group", "must not be empty");
  }
}

void Loader::readRoutes(const Entry& e, Channel& channel, size_t channel_index) {
  if (!e.value.IsSequence()) {
    error(valueMark(e), e.path, expectedGot("a list of routes", kindOf(e.value)));
    return;
  }
  if (e.value.size() == 0) {
    error(valueMark(e), e.path, "expected at least one route");
    return;
  }
  size_t index = 0;
  for (auto it = e.value.begin(); it != e.value.end(); ++it, ++index) {
    const YAML::Node item = *it;
    const Entry route_entry{"", item.Mark().is_null() ? e.key_node : item, item, indexKey(e.path, index)};
    channel.routes.push_back(readRoute(route_entry, channel_index, channel.routes.size()));
  }
}

Route Loader::readRoute(const Entry& owner, size_t channel_index, size_t route_index) {
  Route route;
  const YAML::Mark mark = valueMark(owner);
  route.origin = Origin{file(), mark.line + 1, owner.path};
  bool has_plugins = false;
  const bool is_map =
      readFields(owner, {
                            {"events", [&](const Entry& e) { readEvents(e, route); }},
                            {"plugins",
                             [&](const Entry& e) {
                               has_plugins = true;
                               readRoutePlugins(e, route);
                             }},
                            {"retry",
                             [&](const Entry& e) {
                               route_retries_.push_back(RouteRetry{channel_index, route_index, RetryKeys{}});
                               readRetryKeys(e, route_retries_.back().keys);
                             }},
                            {"idempotency",
                             [&](const Entry& e) {
                               route.idempotency_ttl_ms = 86400000;  // a day unless ttl_ms says otherwise
                               readFields(e, {{"ttl_ms", [&](const Entry& t) {
                                                 readInteger(t, route.idempotency_ttl_ms, 1, uint64_t{1} << 40);
                                               }}});
                             }},
                        });
  if (is_map && !has_plugins) {
    error(mark, owner.path, "missing required key \"plugins\"");
  }
  return route;
}

void Loader::readEvents(const Entry& e, Route& route) {
  const std::string expected = "a list of event types or \"*\"";
  if (e.value.IsScalar()) {
    const std::optional<std::string> value = text(e, expected);
    if (value && *value != "*") {
      error(valueMark(e), e.path,
            expectedGot(expected, gotValue(e.value.Scalar(), *value)) + " (write [" + *value + "] for a single type)");
    }
    return;  // "*": every type, which an empty list stands for
  }
  if (!e.value.IsSequence()) {
    error(valueMark(e), e.path, expectedGot(expected, kindOf(e.value)));
    return;
  }
  if (e.value.size() == 0) {
    error(valueMark(e), e.path, "expected at least one event type (\"*\" for every type)");
    return;
  }
  std::vector<std::string> events;
  bool every = false;
  size_t index = 0;
  for (auto it = e.value.begin(); it != e.value.end(); ++it, ++index) {
    const std::string path = indexKey(e.path, index);
    const YAML::Mark mark = it->Mark().is_null() ? valueMark(e) : it->Mark();
    std::optional<std::string> value = text(*it, mark, path, "an event type");
    if (!value) {
      continue;
    }
    if (value->empty()) {
      error(mark, path, "an event type must not be empty");
    } else if (*value == "*") {
      every = true;
    } else if (std::find(events.begin(), events.end(), *value) != events.end()) {
      error(mark, path, "duplicate event type " + quote(*value));
    } else {
      events.push_back(std::move(*value));
    }
  }
  if (every && !events.empty()) {
    error(valueMark(e), e.path, "\"*\" already matches every event type; list no others");
    return;
  }
  route.events = std::move(events);
}

void Loader::readRoutePlugins(const Entry& e, Route& route) {
  const std::string expected = "a non-empty list of plugin instance names";
  if (!e.value.IsSequence() || e.value.size() == 0) {
    error(valueMark(e), e.path, expectedGot(expected, e.value.IsSequence() ? "an empty list" : kindOf(e.value)));
    return;
  }
  size_t index = 0;
  for (auto it = e.value.begin(); it != e.value.end(); ++it, ++index) {
    const std::string path = indexKey(e.path, index);
    const YAML::Mark mark = it->Mark().is_null() ? valueMark(e) : it->Mark();
    std::optional<std::string> name = text(*it, mark, path, "a plugin instance name");
    if (!name) {
      continue;
    }
    if (name->empty()) {
      error(mark, path, "a plugin instance name must not be empty");
    } else if (std::find(route.plugins.begin(), route.plugins.end(), *name) != route.plugins.end()) {
      // Twice in one route would hand the same event to it twice.
      error(mark, path, "plugin " + quote(*name) + " is already listed in this route");
    } else {
      plugin_refs_.push_back(PluginRef{*name, mark, path});
      route.plugins.push_back(std::move(*name));
    }
  }
}

}  // namespace evh::config
