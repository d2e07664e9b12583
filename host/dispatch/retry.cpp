// Retry timers.
#include "dispatch/retry.h"

#include "dispatch/plugin_state.h"

namespace evh::dispatch {

void Retries::schedule(Delivery* d, uint64_t delay_ms, void (*again)(Delivery*)) {
  d->wait = Delivery::Wait::Retry;
  d->ps->counters.retry_waiting.add(1);
  d->retry_timer = makeUvHandle<uv_timer_t>(loop_, uv_timer_init);
  d->retry_timer->data = d;
  d->retry_again = again;
  uv_timer_start(
      d->retry_timer.get(),
      [](uv_timer_t* t) {
        auto* del = static_cast<Delivery*>(t->data);
        del->wait = Delivery::Wait::None;
        del->ps->counters.retry_waiting.add(-1);
        del->retry_timer.close();
        del->retry_again(del);
      },
      delay_ms, 0);
}

}  // namespace evh::dispatch
