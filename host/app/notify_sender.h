// Sends sd_notify(3) messages to the service manager from a thread of its
// own, so that the event loop never waits for the receiver.
//
// Why a thread: sd_notify (libsystemd 252) sends on a fresh blocking
// AF_UNIX datagram socket, and a datagram to a socket whose receive queue is
// full (net.unix.max_dgram_qlen datagrams: 10 by default, 512 where
// systemd's sysctl.d sets it) waits until the receiver reads. systemd reads
// promptly, but a NOTIFY_SOCKET nobody reads -- a stuck manager, a wrapper
// that set it and forgot it -- would stop the loop on its eleventh message.
// Here only this thread waits; what queues behind it is bounded (state
// changes are few, a status line and a watchdog ping each replace the one
// waiting).
#pragma once

#include <memory>
#include <string>

namespace evh::app {

class NotifySender {
 public:
  // Starts the thread. Build it only when NOTIFY_SOCKET is set (sd_notify
  // reads it on every send).
  NotifySender();
  // Sends what is queued and joins the thread -- waiting at most about a
  // second: a receiver that does not read leaves the thread behind
  // (detached; it holds only its own state) rather than the process.
  ~NotifySender();
  NotifySender(const NotifySender&) = delete;
  NotifySender& operator=(const NotifySender&) = delete;

  // Queues a state change, e.g. "READY=1\nSTATUS=ready: ...": sent in
  // order, never dropped. A status line still waiting is dropped (the state
  // change carries a newer one). THREAD: any.
  void state(std::string message);
  // Queues "STATUS=<line>", replacing a status line not sent yet. THREAD: any.
  void status(std::string line);
  // Queues "WATCHDOG=1" unless one is waiting already. THREAD: any.
  void ping();

 private:
  struct Shared;
  static void run(const std::shared_ptr<Shared>& shared);

  std::shared_ptr<Shared> shared_;
};

}  // namespace evh::app
