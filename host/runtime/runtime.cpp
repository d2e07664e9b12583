// Building the runtime graph from a Config.
#include "runtime/runtime.h"

#include <algorithm>

namespace evh::runtime {

ChannelId ChannelIds::of(const config::Channel& ch) {
  std::string key = ch.transport == config::Transport::Stream ? "stream:" : ch.pattern ? "pattern:" : "pubsub:";
  key += ch.name;
  auto [it, added] = ids_.emplace(std::move(key), next_);
  if (added) {
    ++next_;
  }
  return it->second;
}

std::shared_ptr<const Runtime> Runtime::build(const config::Config& config, const route::Table::Find& find,
                                              ChannelIds& ids, uint64_t generation, ops::Registry* stats) {
  std::shared_ptr<Runtime> rt(new Runtime());
  route::Table::SeriesFor series_for;
  if (stats != nullptr) {
    rt->stats_ = std::make_unique<ops::Scope>(*stats);
    Runtime* r = rt.get();
    series_for = [r](plugin::Instance& in, const std::string& type) -> const route::TypeSeries* {
      std::string key = in.name() + '\0' + type;
      auto it = r->series_.find(key);
      if (it == r->series_.end()) {
        ops::Scope& scope = *r->stats_;
        const ops::Labels labels{{"plugin", in.name()}, {"event_type", type}};
        auto outcome = [&](const char* o) {
          ops::Labels l = labels;
          l.emplace_back("outcome", o);
          return scope.counter("evhost_handler_outcomes_by_type_total",
                               "outcomes of handle() calls per routed event type (see evhost_handler_outcomes_total)",
                               l);
        };
        auto series = std::make_unique<route::TypeSeries>(route::TypeSeries{
            scope.counter("evhost_handler_calls_by_type_total", "handle() calls made per routed event type", labels),
            outcome("ok"), outcome("retry"), outcome("reject"), outcome("timeout"), outcome("error")});
        it = r->series_.emplace(std::move(key), std::move(series)).first;
      }
      return it->second.get();
    };
  }
  rt->prefix_ = config.prefix();
  rt->limits_ = config.limits;
  rt->generation_ = generation;
  rt->channels_.reserve(config.channels.size());
  for (const auto& ch : config.channels) {
    Channel c;
    c.id = ids.of(ch);
    c.name = ch.name;
    c.key = rt->prefix_ + ch.name;
    c.pattern = ch.pattern;
    c.sharded = ch.sharded;
    c.transport = ch.transport;
    c.stream = ch.stream;
    if (ch.share.enabled) {
      // The same id as when it was not shared (ChannelIds::of): a reload
      // that turns sharing on or off keeps the subscription as it is.
      c.transport = config::Transport::Stream;
      c.key = rt->prefix_ + ch.share.stream;
      c.forward_from = rt->prefix_ + ch.name;
      c.share_window_s = ch.share.window_s;
      c.share_maxlen = ch.share.maxlen;
    }
    c.routes = route::Table(ch, find, series_for);
    if (ch.signature.enabled) {
      std::vector<signature::Key> keys;
      for (const config::SigningKey& k : ch.signature.keys) {
        keys.push_back(signature::Key{k.id, k.secret});
      }
      c.verifier = std::make_shared<signature::Verifier>(std::move(keys), ch.signature.tolerance_s);
      c.replay_check = ch.signature.replay_check;
    }
    rt->channels_.push_back(std::move(c));
  }
  for (const auto& c : rt->channels_) {
    if (c.id >= rt->by_id_.size()) {
      rt->by_id_.resize(c.id + 1, nullptr);
    }
    rt->by_id_[c.id] = &c;
  }
  return rt;
}

std::shared_ptr<const Runtime> Runtime::build(const config::Config& config, const SharedFind& find, ChannelIds& ids,
                                              uint64_t generation, ops::Registry* stats) {
  std::vector<std::shared_ptr<plugin::Instance>> held;
  auto rt = build(
      config,
      [&](const std::string& name) -> plugin::Instance* {
        std::shared_ptr<plugin::Instance> in = find(name);
        if (in && std::find(held.begin(), held.end(), in) == held.end()) {
          held.push_back(in);
        }
        return in.get();
      },
      ids, generation, stats);
  // Built here, never shared yet: the one place it is written.
  std::const_pointer_cast<Runtime>(rt)->plugins_ = std::move(held);
  return rt;
}

}  // namespace evh::runtime
