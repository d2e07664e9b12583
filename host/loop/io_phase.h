// Whether the loop thread is inside an I/O callback (libuv's poll phase),
// so that the check phase of this same loop iteration is still to come.
// Why: a Redis connection asked to write there can hold the write for that
// check phase and send a whole burst's commands in one write, instead of
// asking epoll to watch for writability (redis/hiredis_compat.cpp). Outside
// it (timers, uv_prepare) the loop may wait for I/O before any check phase,
// so writes go out as before.
#pragma once

namespace evh {

namespace detail {
inline thread_local int io_depth = 0;
}

// Set for the duration of an I/O callback that may ask Redis for writes.
// THREAD: the loop.
class IoPhaseScope {
 public:
  IoPhaseScope() noexcept { ++detail::io_depth; }
  ~IoPhaseScope() { --detail::io_depth; }
  IoPhaseScope(const IoPhaseScope&) = delete;
  IoPhaseScope& operator=(const IoPhaseScope&) = delete;
};

inline bool inIoPhase() noexcept { return detail::io_depth > 0; }

}  // namespace evh
