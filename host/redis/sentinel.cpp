// SentinelAddress: asking the sentinels where the master is, and following
// their +switch-master. See sentinel.h.
#include "redis/sentinel.h"

#include "common/log.h"

#include <hiredis/hiredis.h>

#include <charconv>
#include <cstring>
#include <utility>

namespace evh::redis {
namespace {

constexpr const char* kSwitchChannel = "+switch-master";

std::string_view textOf(const redisReply* r) {
  if (r == nullptr || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)) {
    return {};
  }
  return {r->str, r->len};
}

bool parsePort(std::string_view text, uint16_t& out) {
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 1 || value > 65535) {
    return false;
  }
  out = static_cast<uint16_t>(value);
  return true;
}

}  // namespace

// The asking connection's sentinel: the configured ones in turn, moving on
// whenever the current one fails (down, refusing, or knowing no such master).
class SentinelAddress::Rotation final : public AddressProvider {
 public:
  explicit Rotation(std::vector<Address> nodes) : nodes_(std::move(nodes)) {}
  Address current() override { return nodes_[at_]; }
  void failed(const Address& address, const std::string&) override {
    if (address == nodes_[at_]) {
      at_ = (at_ + 1) % nodes_.size();
    }
  }

 private:
  std::vector<Address> nodes_;
  size_t at_ = 0;
};

// One sentinel's +switch-master subscription.
struct SentinelAddress::Follower {
  SentinelAddress* owner = nullptr;
  std::unique_ptr<Connection> conn;
  bool following = false;  // the SUBSCRIBE confirmed on the current connection
};

SentinelAddress::SentinelAddress(uv_loop_t* loop, Options options)
    : loop_(loop), options_(std::move(options)), rotation_(std::make_shared<Rotation>(options_.nodes)) {
  options_.endpoint.addresses = nullptr;  // a sentinel is where it is configured
  options_.endpoint.require_master = false;
  options_.endpoint.db = 0;
  Connection::Handlers asking;
  asking.on_ready = [this] { ask(); };
  asking.on_lost = [this](const std::string&) { asking_ = false; };
  query_ = std::make_unique<Connection>(loop_, options_.endpoint, "sentinel", Connection::Mode::Commands,
                                        std::move(asking), rotation_);
  for (const Address& node : options_.nodes) {
    auto f = std::make_unique<Follower>();
    f->owner = this;
    Endpoint e = options_.endpoint;
    e.host = node.host;
    e.port = node.port;
    Follower* raw = f.get();
    Connection::Handlers h;
    h.on_ready = [this, raw] {
      raw->conn->subscribe(
          SubscribeKind::Channel, kSwitchChannel,
          [](redisAsyncContext*, void* r, void* privdata) {
            auto* fo = static_cast<Follower*>(privdata);
            fo->owner->onSwitch(*fo, r);
          },
          raw);
      ask();  // a sentinel that was away may know of a switch we missed
    };
    h.on_lost = [raw](const std::string&) { raw->following = false; };
    f->conn = std::make_unique<Connection>(loop_, std::move(e), "sentinel " + node.describe(),
                                           Connection::Mode::Subscriber, std::move(h));
    followers_.push_back(std::move(f));
  }
  refresh_timer_ = makeUvHandle<uv_timer_t>(loop_, uv_timer_init);
  refresh_timer_->data = this;
}

SentinelAddress::~SentinelAddress() { stop(); }

void SentinelAddress::start() {
  if (started_ || stopped_) {
    return;
  }
  started_ = true;
  log::host().info("redis: asking {} sentinel(s) where master {} is", options_.nodes.size(), options_.master);
  query_->start();
  for (auto& f : followers_) {
    f->conn->start();
  }
  uv_timer_start(
      refresh_timer_.get(), [](uv_timer_t* t) { static_cast<SentinelAddress*>(t->data)->ask(); }, options_.refresh_ms,
      options_.refresh_ms);
}

void SentinelAddress::stop() {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  // Their pending callbacks run now, with NULL replies, while this is whole.
  if (query_) {
    query_->stop();
  }
  for (auto& f : followers_) {
    f->conn->stop();
  }
  query_.reset();
  followers_.clear();
  refresh_timer_.close();
  changes_total_ = {};
  stats_.reset();
}

void SentinelAddress::exportStats(ops::Registry& stats) {
  stats_ = std::make_unique<ops::Scope>(stats, ops::Labels{{"master", options_.master}});
  stats_->computedGauge("evhost_redis_master_known", "1 once a sentinel has said where the master is",
                        [this] { return master_.host.empty() ? 0.0 : 1.0; });
  changes_total_ =
      stats_->counter("evhost_redis_master_changes_total", "times the sentinels' answer changed (failovers followed)");
  query_->exportStats(stats);
  for (auto& f : followers_) {
    f->conn->exportStats(stats);
  }
}

void SentinelAddress::failed(const Address& address, const std::string& why) {
  if (stopped_ || master_.host.empty() || address != master_) {
    return;  // not the answer in force (a connection that has moved on)
  }
  log::host().debug("redis: master {} at {} failed ({}): asking the sentinels again", options_.master,
                    address.describe(), why);
  ask();
}

std::string SentinelAddress::waitingFor() const {
  return "no sentinel has said where master " + options_.master + " is yet (asking " +
         std::to_string(options_.nodes.size()) + " sentinel(s))";
}

std::vector<SentinelAddress::SentinelState> SentinelAddress::sentinels() const {
  std::vector<SentinelState> out;
  for (size_t i = 0; i < options_.nodes.size(); ++i) {
    out.push_back(SentinelState{options_.nodes[i].describe(), i < followers_.size() && followers_[i]->following});
  }
  return out;
}

std::string SentinelAddress::askingAt() const { return query_ ? query_->address().describe() : std::string(); }

bool SentinelAddress::askingUp() const { return query_ && query_->ready(); }

void SentinelAddress::ask() {
  if (stopped_ || !query_) {
    return;
  }
  if (asking_) {
    ask_again_ = true;
    return;
  }
  if (!query_->ready()) {
    return;  // its on_ready asks
  }
  const char* argv[] = {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", options_.master.c_str()};
  const size_t lens[] = {8, 23, options_.master.size()};
  const bool sent = query_->command(
      3, argv, lens,
      [](redisAsyncContext*, void* r, void* privdata) { static_cast<SentinelAddress*>(privdata)->onAnswer(r); }, this);
  asking_ = sent;
}

void SentinelAddress::onAnswer(const void* r) {
  asking_ = false;
  const auto* reply = static_cast<const redisReply*>(r);
  if (reply == nullptr || stopped_) {
    return;  // the connection went; its next on_ready asks again
  }
  const std::string at = query_->where();
  std::string problem;
  if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
    const std::string_view host = textOf(reply->element[0]);
    Address a;
    if (!host.empty() && parsePort(textOf(reply->element[1]), a.port)) {
      a.host = std::string(host);
      last_problem_.clear();
      setMaster(a, "sentinel " + at);
    } else {
      problem = "an answer that is not an address";
    }
  } else if (reply->type == REDIS_REPLY_NIL) {
    problem = "it monitors no master named " + options_.master;
  } else if (reply->type == REDIS_REPLY_ERROR) {
    problem = std::string(reply->str, std::min<size_t>(reply->len, 200));
  } else {
    problem = "an unexpected reply (type " + std::to_string(reply->type) + ")";
  }
  if (!problem.empty()) {
    if (problem != last_problem_) {
      log::host().error("redis: sentinel {} cannot say where master {} is: {}; asking the next sentinel", at,
                        options_.master, problem);
      last_problem_ = problem;
    }
    query_->reconnect("cannot say where master " + options_.master + " is: " + problem);  // the next sentinel
    return;
  }
  if (ask_again_) {
    ask_again_ = false;
    ask();
  }
}

Address SentinelAddress::switchedTo(std::string_view payload, const std::string& master) {
  std::vector<std::string_view> parts;
  while (!payload.empty()) {
    const size_t sp = payload.find(' ');
    parts.push_back(payload.substr(0, sp));
    if (sp == std::string_view::npos) {
      break;
    }
    payload.remove_prefix(sp + 1);
  }
  Address a;
  if (parts.size() != 5 || parts[0] != master || parts[3].empty() || !parsePort(parts[4], a.port)) {
    return {};
  }
  a.host = std::string(parts[3]);
  return a;
}

void SentinelAddress::onSwitch(Follower& f, const void* r) {
  const auto* reply = static_cast<const redisReply*>(r);
  if (reply == nullptr || stopped_ || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) {
    return;
  }
  const std::string_view kind = textOf(reply->element[0]);
  if (kind == "subscribe") {
    f.following = true;
    return;
  }
  if (kind == Connection::kRefused) {
    log::host().error(
        "redis: sentinel {} refuses the {} subscription ({}): failovers are seen only when a "
        "connection fails",
        f.conn->where(), kSwitchChannel, textOf(reply->element[2]));
    return;
  }
  if (kind != "message") {
    return;
  }
  const Address to = switchedTo(textOf(reply->element[2]), options_.master);
  if (!to.host.empty()) {
    setMaster(to, "+switch-master from sentinel " + f.conn->where());
  }
}

void SentinelAddress::setMaster(const Address& address, const std::string& source) {
  if (address == master_) {
    return;
  }
  const Address was = master_;
  master_ = address;
  if (was.host.empty()) {
    log::host().info("redis: master {} is at {} ({})", options_.master, address.describe(), source);
  } else {
    ++changes_;
    changes_total_.inc();
    log::host().warn("redis: master {} moved from {} to {} ({}): every connection follows", options_.master,
                     was.describe(), address.describe(), source);
  }
  notifyChanged();
}

}  // namespace evh::redis
