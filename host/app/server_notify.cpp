// The server's side of the service manager's notifications (sd_notify):
// readiness and the figures of the status line.
#include "app/server.h"

namespace evh::app {

void Server::startNotify() {
  ServiceNotify::Hooks hooks;
  hooks.readiness = [this] { return readiness(); };
  hooks.figures = [this] { return statusFigures(); };
  notify_ = std::make_unique<ServiceNotify>(&loop_, std::move(hooks));
  notify_->start();
}

StatusFigures Server::statusFigures() const {
  StatusFigures f;
  f.channels = config_.channels.size();
  f.plugins = registry_.instances().size();
  if (dispatcher_) {
    for (const auto& in : registry_.instances()) {
      if (dispatcher_->knows(in.get())) {
        f.handled += dispatcher_->counters(in.get()).ok;
      }
    }
    f.dead_lettered = dispatcher_->deadLettered();
    f.in_flight = dispatcher_->inFlight();
  }
  return f;
}

}  // namespace evh::app
