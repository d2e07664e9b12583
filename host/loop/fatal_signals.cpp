// The fatal-signal handler: everything in it is async-signal-safe -- no
// malloc, no stdio, no locks, no spdlog; numbers are formatted by hand.
#include "loop/fatal_signals.h"

#include "common/log.h"
#include "loop/current_call.h"

#include <execinfo.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

namespace evh {
namespace {

constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
constexpr size_t kMaxField = 200;  // bytes of an eventId, eventType or channel in the line (as the watchdog)
constexpr size_t kLineSize = 2048;
constexpr int kMaxFrames = 64;
constexpr size_t kPathSize = 4096;

// Appends to a fixed buffer, always leaving room for the final newline;
// what does not fit is cut.
class Line {
 public:
  Line(char* out, size_t size) noexcept : out_(out), cap_(size > 0 ? size - 1 : 0) {}

  void text(const char* s) noexcept {
    while (*s != '\0') {
      put(*s++);
    }
  }
  // Control bytes (and the quote, inside quotes) as \xNN: no value can end
  // the line or forge another. At most `max` bytes, then "...".
  void escaped(const char* p, size_t n, size_t max = kMaxField) noexcept {
    if (p == nullptr) {
      return;
    }
    for (size_t i = 0; i < n && i < max; ++i) {
      const auto c = static_cast<unsigned char>(p[i]);
      if (c < 0x20U || c == 0x7FU || c == '"' || c == '\\') {
        static constexpr char kHex[] = "0123456789abcdef";
        put('\\');
        put('x');
        put(kHex[c >> 4U]);
        put(kHex[c & 0xFU]);
      } else {
        put(static_cast<char>(c));
      }
    }
    if (n > max) {
      text("...");
    }
  }
  void escaped(std::string_view s) noexcept { escaped(s.data(), s.size()); }
  void escaped(const evh_str& s) noexcept { escaped(s.ptr, s.len); }
  void quoted(std::string_view s) noexcept {
    put('"');
    escaped(s);
    put('"');
  }
  void hex(uintptr_t v) noexcept {
    static constexpr char kHex[] = "0123456789abcdef";
    char digits[2 * sizeof v];
    size_t n = 0;
    do {
      digits[n++] = kHex[v & 0xFU];
      v >>= 4U;
    } while (v != 0);
    text("0x");
    while (n > 0) {
      put(digits[--n]);
    }
  }
  void dec(uint64_t v) noexcept {
    char digits[20];
    size_t n = 0;
    do {
      digits[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (n > 0) {
      put(digits[--n]);
    }
  }
  size_t finish() noexcept {
    out_[len_++] = '\n';
    return len_;
  }

 private:
  void put(char c) noexcept {
    if (len_ < cap_) {
      out_[len_++] = c;
    }
  }

  char* out_;
  size_t cap_;
  size_t len_ = 0;
};

// Writes all of `p` to `fd`.
void writeAll(int fd, const char* p, size_t n) noexcept {
  while (n > 0) {
    const ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

// Writes all of `p` to stderr unless it cannot take a line within a second
// (a pipe nobody reads): the process must still end.
void writeStderr(const char* p, size_t n) noexcept {
  pollfd pfd{STDERR_FILENO, POLLOUT, 0};
  int r;
  do {
    r = poll(&pfd, 1, 1000);
  } while (r < 0 && errno == EINTR);
  if (r <= 0 || (pfd.revents & POLLOUT) == 0) {
    return;
  }
  writeAll(STDERR_FILENO, p, n);
}

void sleepMs(long ms) noexcept {
  timespec ts{0, ms * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

std::atomic<bool> g_reporting{false};
char g_line[kLineSize];
char g_more[kLineSize];
void* g_frames[kMaxFrames];
// The crash file (setCrashFile): its path, checked at start; the handler
// opens it (open(2) is async-signal-safe), so that a run that does not
// crash leaves no file behind.
bool g_crash_file = false;
int g_crash_fd = -1;  // open while the handler reports
char g_crash_path[kPathSize];

// The frames' addresses on one line, innermost first, for stderr (the crash
// file gets them with their modules and symbols).
size_t formatFrames(int frames, char* out, size_t size) noexcept {
  Line line(out, size);
  line.text("evhost: backtrace:");
  for (int i = 0; i < frames; ++i) {
    line.text(" ");
    line.hex(reinterpret_cast<uintptr_t>(g_frames[i]));
  }
  if (g_crash_fd >= 0) {
    line.text(" (modules and symbols in ");
    line.text(g_crash_path);
    line.text(")");
  }
  return line.finish();
}

// Appends the report to the crash file: when, the line, the backtrace with
// each frame's module and symbol (backtrace_symbols_fd writes without
// allocating), and a blank line.
void writeCrashFile(const char* line, size_t n, int frames) noexcept {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  char head[128];
  Line h(head, sizeof head);
  h.text("evhost crash: pid ");
  h.dec(static_cast<uint64_t>(getpid()));
  h.text(", unix time ");
  h.dec(static_cast<uint64_t>(now.tv_sec));
  const size_t hn = h.finish();
  writeAll(g_crash_fd, head, hn);
  writeAll(g_crash_fd, line, n);
  static constexpr char kBacktrace[] = "backtrace (innermost first):\n";
  writeAll(g_crash_fd, kBacktrace, sizeof kBacktrace - 1);
  backtrace_symbols_fd(g_frames, frames, g_crash_fd);
  writeAll(g_crash_fd, "\n", 1);
  fsync(g_crash_fd);
}

void onFatalSignal(int signum, siginfo_t* info, void*) {
  const int saved_errno = errno;
  if (g_reporting.exchange(true)) {
    // Another thread is reporting its crash (of another signal: this one's
    // handler was reset): let it finish, since its raise ends the process.
    sleepMs(2000);
  } else {
    // si_addr means something only for a signal the kernel raised for a
    // fault (si_code > 0), not for one sent with kill() or raise().
    const bool fault = info != nullptr && info->si_code > 0;
    const size_t n =
        formatFatalLine(signum, fault, fault ? reinterpret_cast<uintptr_t>(info->si_addr) : 0, g_line, sizeof g_line);
    // The handler's own frames come first: they show where it was called.
    const int frames = backtrace(g_frames, kMaxFrames);
    if (g_crash_file) {
      g_crash_fd = ::open(g_crash_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    }
    if (g_crash_fd >= 0) {
      writeCrashFile(g_line, n, frames);
    }
    log::awaitWriterAfterCrash();
    writeStderr(g_line, n);
    writeStderr(g_more, formatFrames(frames, g_more, sizeof g_more));
  }
  errno = saved_errno;
  // SA_RESETHAND put the default action back and SA_NODEFER leaves the
  // signal unblocked: this ends the process, with the signal's status.
  raise(signum);
}

}  // namespace

const char* fatalSignalName(int signum) noexcept {
  switch (signum) {
    case SIGSEGV:
      return "SIGSEGV";
    case SIGBUS:
      return "SIGBUS";
    case SIGFPE:
      return "SIGFPE";
    case SIGILL:
      return "SIGILL";
    case SIGABRT:
      return "SIGABRT";
    default:
      return nullptr;
  }
}

size_t formatFatalLine(int signum, bool has_address, uintptr_t address, char* out, size_t size) noexcept {
  if (size == 0) {
    return 0;
  }
  Line line(out, size);
  line.text("evhost: fatal signal ");
  if (const char* name = fatalSignalName(signum)) {
    line.text(name);
  } else {
    line.dec(static_cast<uint64_t>(signum));
  }
  const CallSite* site = ThreadCall::current();
  if (site == nullptr) {
    line.text(" outside any plugin call (thread ");
    line.dec(static_cast<uint64_t>(syscall(SYS_gettid)));
    line.text(")");
  } else {
    line.text(" in plugin ");
    line.quoted(site->library != nullptr ? std::string_view(site->library) : std::string_view("?"));
    line.text(" (instance ");
    line.quoted(site->plugin);
    line.text(")");
    if (site->event != nullptr) {
      line.text(" while handling event ");
      line.escaped(site->event->event_id);
      line.text(" (type ");
      line.escaped(site->event->event_type);
      line.text(", channel ");
      line.escaped(site->event->channel);
      line.text(")");
    } else {
      line.text(" while running its ");
      line.text(site->what != nullptr ? site->what : "code");
    }
  }
  if (has_address) {
    if (signum == SIGSEGV || signum == SIGBUS) {
      line.text("; fault address ");
      line.hex(address);
    } else if (signum == SIGFPE || signum == SIGILL) {
      line.text("; at instruction ");
      line.hex(address);
    }
  }
  return line.finish();
}

void installFatalSignalHandler() {
  // backtrace() loads the unwinder (libgcc_s) on its first call, which may
  // allocate: done now, so that the handler's call does not.
  backtrace(g_frames, kMaxFrames);
  struct sigaction sa {};
  sa.sa_sigaction = &onFatalSignal;
  sigemptyset(&sa.sa_mask);
  // SA_RESETHAND: the default action is back once the handler runs, so the
  // re-raise ends the process as the signal would have; SA_NODEFER: that
  // re-raise is not held back until the handler returns.
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND | SA_NODEFER;
  for (int s : kSignals) {
    sigaction(s, &sa, nullptr);
  }
}

bool setCrashFile(const std::string& path, std::string& error) {
  if (path.size() >= kPathSize) {
    error = "the path is too long";
    return false;
  }
  // Whether the handler will be able to open it: an existing file must
  // open for appending; otherwise its folder must take a new file.
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd >= 0) {
    ::close(fd);
  } else if (errno != ENOENT) {
    error = std::strerror(errno);
    return false;
  } else {
    const size_t slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    if (::access(dir.c_str(), W_OK | X_OK) != 0) {
      error = "cannot create a file in " + dir + ": " + std::strerror(errno);
      return false;
    }
  }
  std::memcpy(g_crash_path, path.c_str(), path.size() + 1);
  g_crash_file = true;
  return true;
}

AltSignalStack::AltSignalStack() {
  // SIGSTKSZ is sysconf(_SC_SIGSTKSZ) in glibc 2.34+: not a constant.
  const long min = sysconf(_SC_SIGSTKSZ);
  size_ = std::max<size_t>(64 * 1024, min > 0 ? static_cast<size_t>(min) : 0);
  memory_ = std::malloc(size_);
  if (memory_ == nullptr) {
    return;  // no alternate stack: a crash by stack overflow goes unreported on this thread
  }
  stack_t ss{};
  ss.ss_sp = memory_;
  ss.ss_size = size_;
  ss.ss_flags = 0;
  stack_t old{};
  if (sigaltstack(&ss, &old) == 0) {
    installed_ = true;
    old_sp_ = old.ss_sp;
    old_size_ = old.ss_size;
    old_flags_ = old.ss_flags;
  }
}

AltSignalStack::~AltSignalStack() {
  if (installed_) {
    stack_t old{};
    old.ss_sp = old_sp_;
    old.ss_size = old_size_;
    old.ss_flags = (old_flags_ & SS_DISABLE) != 0 ? SS_DISABLE : 0;
    sigaltstack(&old, nullptr);
  }
  std::free(memory_);
}

}  // namespace evh
