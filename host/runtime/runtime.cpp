// Building the runtime graph from a Config.
#include "runtime/runtime.h"

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
                                              ChannelIds& ids, uint64_t generation) {
  std::shared_ptr<Runtime> rt(new Runtime());
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
    c.transport = ch.transport;
    c.stream = ch.stream;
    c.routes = route::Table(ch, find);
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

}  // namespace evh::runtime
