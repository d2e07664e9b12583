// The plugins' half of a reload: see reload_plugins.h.
#include "app/reload_plugins.h"

#include "common/log.h"

#include <sstream>
#include <utility>

namespace evh::app {
namespace {

constexpr uint64_t kRetireEveryMs = 50;

}  // namespace

PluginReload::PluginReload(uv_loop_t* loop, plugin::Registry& registry, dispatch::Dispatcher& dispatcher,
                           plugin::HostServices& services, std::vector<std::string> search_dirs)
    : registry_(registry),
      dispatcher_(dispatcher),
      services_(services),
      search_dirs_(std::move(search_dirs)),
      timer_(makeUvHandle<uv_timer_t>(loop, uv_timer_init)) {
  timer_->data = this;
}

PluginReload::~PluginReload() {
  if (staged_) {
    registry_.discard(*staged_);  // the registry's unloadAll shuts them down
  }
}

std::vector<std::string> PluginReload::prepare(const config::Config& running, const config::Config& next) {
  abandon();
  try {
    staged_ = registry_.stage(running.plugins, next.plugins, search_dirs_, services_, next.prefix(),
                              running.dead_letter.plugin);
  } catch (const plugin::LoadError& e) {
    retireLater();  // what it made and initialised
    std::vector<std::string> out;
    std::istringstream lines(e.what());
    for (std::string line; std::getline(lines, line);) {
      out.push_back(line);
    }
    return out;
  }
  return {};
}

std::shared_ptr<plugin::Instance> PluginReload::find(const std::string& name) const {
  return staged_ ? staged_->find(name) : registry_.findShared(name);
}

std::string PluginReload::changes() const {
  std::string out;
  if (staged_) {
    for (const std::string& c : staged_->changes) {
      out += (out.empty() ? "" : ", ") + c;
    }
  }
  return out;
}

void PluginReload::commit(const config::Config& next) {
  if (!staged_) {
    return;
  }
  for (const auto& in : staged_->fresh) {
    for (const auto& p : next.plugins) {
      if (p.name == in->name()) {
        dispatcher_.join(dispatch::PluginSetup{in.get(), p.breaker, p.timeout_ms});
      }
    }
  }
  registry_.adopt(std::move(*staged_));
  staged_.reset();
  retireLater();
}

void PluginReload::abandon() {
  if (staged_) {
    registry_.discard(*staged_);
    staged_.reset();
    retireLater();
  }
}

void PluginReload::retireLater() {
  if (!registry_.retiring().empty() && uv_is_active(reinterpret_cast<uv_handle_t*>(timer_.get())) == 0) {
    uv_timer_start(
        timer_.get(), [](uv_timer_t* t) { static_cast<PluginReload*>(t->data)->retireIdle(); }, kRetireEveryMs,
        kRetireEveryMs);
  }
}

void PluginReload::retireIdle() {
  const size_t left = registry_.retireIdle([this](plugin::Instance& in) { return dispatcher_.forget(&in); });
  if (left == 0) {
    uv_timer_stop(timer_.get());
  }
}

}  // namespace evh::app
