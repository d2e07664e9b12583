// Dispatch of routed events to plugins, and the evh_call state machine.
#include "dispatch/dispatcher.h"

#include "common/log.h"

#include <spdlog/spdlog.h>

#include <mutex>

namespace evh::dispatch {

// Every event between decode and its last plugin outcome.
struct Dispatcher::InFlight {
  event::Event event;
  uint32_t remaining = 0;  // calls not finished
};

// The host side of one handle() call. Its state moves
//   Running -> Returned (handle answered PENDING) -> Done (complete)
//   Running -> CompletedEarly (complete ran before handle returned) -> Done
// so that complete() may come from any thread at any time, exactly once.
class Dispatcher::Call final : public evh_call {
 public:
  enum State : int { Running, Returned, CompletedEarly, Done };

  Call(Dispatcher* d, InFlight* f, route::Target t, uint32_t attempt)
      : dispatcher(d), inflight(f), target(t), alive(d->alive_) {
    f->event.fillView(view, attempt, d->options_.max_attempts);
  }

  void setError(std::string_view msg) override {
    std::lock_guard<std::mutex> lock(mutex);
    error.assign(msg);
  }

  evh_status complete(evh_status status, std::string_view msg) override {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (state == Done || state == CompletedEarly) {
        return EVH_ERR_STATE;
      }
      completed_status = status;
      if (!msg.empty()) {
        error.assign(msg);
      }
      if (state == Running) {
        state = CompletedEarly;  // afterHandle finishes it
        return EVH_OK;
      }
      state = Done;
    }
    // Returned: finish on the loop. The post carries the alive flag so that
    // a completion arriving after the dispatcher is gone is dropped.
    auto token = alive;
    Dispatcher* d = dispatcher;
    if (!d->poster_.post([token, d, this, status] {
          if (token->load()) {
            d->finish(this, status);
          }
        })) {
      return EVH_ERR_CANCELLED;
    }
    return EVH_OK;
  }

  std::string takeError() {
    std::lock_guard<std::mutex> lock(mutex);
    return std::move(error);
  }

  Dispatcher* dispatcher;
  InFlight* inflight;
  route::Target target;
  evh_event view{};
  std::shared_ptr<std::atomic<bool>> alive;
  std::mutex mutex;
  Call* prev = nullptr;  // Dispatcher's list of unfinished calls
  Call* next = nullptr;
  State state = Running;
  evh_status completed_status = EVH_OK;
  std::string error;
};

namespace {

const char* statusName(evh_status s) {
  switch (s) {
    case EVH_OK: return "ok";
    case EVH_RETRY: return "retry";
    case EVH_REJECT: return "rejected";
    case EVH_PENDING: return "pending";
    default: return "invalid-status";
  }
}

}  // namespace

Dispatcher::Dispatcher(Poster& poster, WorkerPool& pool, const std::vector<plugin::Instance*>& plugins,
                       Options options)
    : poster_(poster), pool_(pool), options_(options), alive_(std::make_shared<std::atomic<bool>>(true)) {
  for (plugin::Instance* p : plugins) {
    uint32_t limit = p->library().desc().max_concurrency;
    if (limit == 0 || limit > pool_.size()) {
      limit = static_cast<uint32_t>(pool_.size());
    }
    PluginState ps;
    ps.plugin = p;
    ps.limit = limit;
    plugins_.emplace(p, std::move(ps));
  }
}

Dispatcher::~Dispatcher() {
  alive_->store(false);
  // Whatever is left was abandoned at the shutdown deadline; the plugins
  // are shut down by now.
  while (live_head_ != nullptr) {
    release(live_head_);
  }
}

void Dispatcher::link(Call* call) {
  call->next = live_head_;
  if (live_head_ != nullptr) {
    live_head_->prev = call;
  }
  live_head_ = call;
  ++live_calls_;
}

void Dispatcher::unlink(Call* call) {
  if (call->prev != nullptr) {
    call->prev->next = call->next;
  } else {
    live_head_ = call->next;
  }
  if (call->next != nullptr) {
    call->next->prev = call->prev;
  }
  --live_calls_;
}

// Frees a call and, with its last call, its event.
void Dispatcher::release(Call* call) {
  unlink(call);
  InFlight* f = call->inflight;
  delete call;
  if (--f->remaining == 0) {
    delete f;
    --in_flight_;
  }
}

bool Dispatcher::dispatch(event::Event&& event, const route::Targets& targets) {
  if (targets.empty()) {
    return true;
  }
  if (in_flight_ >= options_.max_in_flight) {
    return false;
  }
  auto* f = new InFlight{std::move(event), static_cast<uint32_t>(targets.size())};
  ++in_flight_;
  if (options_.trace_events) {
    log::host().info("event stage=routed eventId={} correlationId={} eventType={} plugins={}", f->event.eventId(),
                     f->event.correlationId(), f->event.eventType(), targets.size());
  }
  // Create every call before starting any: an inline plugin finishing at
  // once must not free the InFlight while later targets still need it.
  std::vector<Call*> calls;
  calls.reserve(targets.size());
  for (const auto& t : targets) {
    calls.push_back(new Call(this, f, t, 1));
    link(calls.back());
  }
  for (Call* c : calls) {
    start(c);
  }
  return true;
}

void Dispatcher::start(Call* call) {
  PluginState& ps = plugins_.at(call->target.plugin);
  ++ps.counters.calls;
  if (options_.trace_events) {
    log::host().info("event stage=dispatched eventId={} correlationId={} plugin={}", call->inflight->event.eventId(),
                     call->inflight->event.correlationId(), call->target.plugin->name());
  }
  if (call->target.plugin->blocking()) {
    ps.waiting.push_back(call);
    pump(ps);
  } else {
    runInline(call);
  }
}

namespace {

// The one place a plugin's handle() is called. A C++ plugin written without
// the SDK wrapper may still throw through the C boundary; catch it here so
// that it costs a retry, not the host.
evh_status callPlugin(plugin::Instance& p, const evh_event& view, evh_call* call) {
  try {
    return p.handle(view, call);
  } catch (const std::exception& e) {
    call->setError(std::string("exception thrown through the C ABI: ") + e.what());
  } catch (...) {
    call->setError("unknown exception thrown through the C ABI");
  }
  return EVH_RETRY;
}

}  // namespace

void Dispatcher::runInline(Call* call) {
  evh_status s = callPlugin(*call->target.plugin, call->view, call);
  afterHandle(call, s);
}

void Dispatcher::pump(PluginState& ps) {
  while (ps.running < ps.limit && !ps.waiting.empty()) {
    Call* call = ps.waiting.front();
    ps.waiting.pop_front();
    ++ps.running;
    submitBlocking(call);
  }
}

void Dispatcher::submitBlocking(Call* call) {
  auto on_worker = plugins_.at(call->target.plugin).on_worker;
  pool_.submit([this, call, token = alive_, on_worker] {
    // Count first, then look at the token: abandon() clears the token and
    // then reads the count, so either it sees this call as running or this
    // call sees the token cleared and never enters the plugin.
    on_worker->fetch_add(1);
    if (!token->load()) {
      on_worker->fetch_sub(1);
      return;
    }
    evh_status s = callPlugin(*call->target.plugin, call->view, call);
    on_worker->fetch_sub(1);
    poster_.post([this, call, s, token] {
      if (!token->load()) {
        return;
      }
      PluginState& ps = plugins_.at(call->target.plugin);
      --ps.running;
      afterHandle(call, s);
      pump(ps);
    });
  });
}

void Dispatcher::afterHandle(Call* call, evh_status status) {
  if (status == EVH_PENDING) {
    std::unique_lock<std::mutex> lock(call->mutex);
    ++plugins_.at(call->target.plugin).counters.pending;
    if (call->state == Call::CompletedEarly) {
      call->state = Call::Done;
      evh_status s = call->completed_status;
      lock.unlock();
      finish(call, s);
    } else {
      call->state = Call::Returned;  // complete() finishes it
    }
    return;
  }
  {
    std::lock_guard<std::mutex> lock(call->mutex);
    if (call->state == Call::CompletedEarly) {
      call->target.plugin->logger().error(
          "plugin bug: complete() was called for a call whose handle() then answered {} (not PENDING); "
          "using the answer",
          statusName(status));
    }
    call->state = Call::Done;
  }
  finish(call, status);
}

void Dispatcher::finish(Call* call, evh_status status) {
  PluginState& ps = plugins_.at(call->target.plugin);
  const event::Event& ev = call->inflight->event;
  std::string error = call->takeError();
  switch (status) {
    case EVH_OK: ++ps.counters.ok; break;
    case EVH_REJECT:
      ++ps.counters.rejected;
      call->target.plugin->logger().warn("rejected eventType={} eventId={} correlationId={}: {}", ev.eventType(),
                                         ev.eventId(), ev.correlationId(), error.empty() ? "(no message)" : error);
      break;
    default:
      if (status != EVH_RETRY) {
        error = "handle() answered an unknown status " + std::to_string(status) + (error.empty() ? "" : ": " + error);
      }
      ++ps.counters.retry;
      call->target.plugin->logger().warn("failed eventType={} eventId={} correlationId={}: {}", ev.eventType(),
                                         ev.eventId(), ev.correlationId(), error.empty() ? "(no message)" : error);
      break;
  }
  if (options_.trace_events) {
    log::host().info("event stage=done eventId={} correlationId={} plugin={} status={}", ev.eventId(),
                     ev.correlationId(), call->target.plugin->name(), statusName(status));
  }
  release(call);
  checkIdle();
}

void Dispatcher::whenIdle(std::function<void()> on_idle) {
  on_idle_ = std::move(on_idle);
  checkIdle();
}

void Dispatcher::checkIdle() {
  if (in_flight_ == 0 && on_idle_) {
    auto fn = std::move(on_idle_);
    on_idle_ = nullptr;
    fn();
  }
}

std::vector<std::string> Dispatcher::abandon() {
  std::unordered_map<const plugin::Instance*, size_t> per_plugin;
  for (Call* c = live_head_; c != nullptr; c = c->next) {
    ++per_plugin[c->target.plugin];
  }
  std::vector<std::string> out;
  for (auto& [p, n] : per_plugin) {
    PluginState& ps = plugins_.at(p);
    ps.counters.abandoned += n;
    out.push_back(p->name() + ": " + std::to_string(n) + " call(s) unfinished (" + std::to_string(ps.running) +
                  " running on workers, " + std::to_string(ps.waiting.size()) + " never started)");
    ps.waiting.clear();  // the calls stay on the live list, freed by the destructor
  }
  // Completions and worker results arriving from now on are dropped.
  alive_->store(false);
  return out;
}

std::vector<const plugin::Instance*> Dispatcher::busyPlugins() const {
  std::vector<const plugin::Instance*> out;
  for (const auto& [p, ps] : plugins_) {
    if (ps.on_worker->load() > 0) {
      out.push_back(p);
    }
  }
  return out;
}

const PluginCounters& Dispatcher::counters(const plugin::Instance* p) const { return plugins_.at(p).counters; }

}  // namespace evh::dispatch
