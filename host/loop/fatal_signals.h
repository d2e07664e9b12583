// A crash in plugin code (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT) named in
// one line on stderr -- which plugin, which instance, which event or
// callback -- with a backtrace, and appended to a crash file, before the
// signal's default action ends the process (exit status 128 + the signal, a
// core dump where enabled).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace evh {

// Installs the handler for the fatal signals, process-wide (sigaction with
// SA_ONSTACK, SA_RESETHAND, SA_NODEFER, SA_SIGINFO). The handler, on the
// crashing thread and with async-signal-safe calls only:
//   1. formats, into a static buffer, by hand (no malloc, no stdio):
//        evhost: fatal signal SIGSEGV in plugin "LIB" (instance "NAME") while handling event ID
//        (type TYPE, channel CH); fault address 0x...
//      from the thread's ThreadCall record (loop/current_call.h), or
//      "outside any plugin call" -- never a payload or a config value;
//   2. takes a backtrace (backtrace(3), primed here so that it does not
//      load the unwinder in the handler) and, when there is a crash file
//      (setCrashFile), appends to it: pid and time, the line, and every
//      frame with its module and symbol (backtrace_symbols_fd, no malloc),
//      then fsyncs it;
//   3. gives the log writer thread a moment to write the lines queued before
//      the crash (log::awaitWriterAfterCrash: at most about half a second);
//   4. writes the line to stderr, then "evhost: backtrace: 0x... 0x..."
//      (write(2), after poll(2) says a line fits: a stderr nobody reads
//      cannot hold the process in its crash);
//   5. raises the signal again: the default action, now in force
//      (SA_RESETHAND), ends the process.
// Strictly, backtrace(3) is not on POSIX's async-signal-safe list; with the
// unwinder loaded beforehand, glibc's walks the stack without allocating or
// locking, which is why crash reporters use it.
// Call it once, from main(), before the threads that run plugin code start.
// Not in in-process tests: gtest and the sanitizers keep their own.
void installFatalSignalHandler();

// Names the file crash reports are appended to (created at the first
// crash, mode 0640: a run that never crashes leaves none). Checks now that
// it could be: False with `error` when an existing file does not open for
// appending or its folder takes no new file -- crashes are then reported on
// stderr only. THREAD: main, before the threads that run plugin code start.
bool setCrashFile(const std::string& path, std::string& error);

// The signal's name ("SIGSEGV"), or nullptr for one the handler does not
// take. Async-signal-safe.
const char* fatalSignalName(int signum) noexcept;

// Formats the handler's line for signal `signum` into `out` (at most `size`
// bytes, cut to fit; the line ends with '\n'), from the calling thread's
// ThreadCall record; with `has_address`, the fault address (SIGSEGV,
// SIGBUS) or the faulting instruction (SIGFPE, SIGILL). Returns the length.
// Async-signal-safe; exposed for tests.
size_t formatFatalLine(int signum, bool has_address, uintptr_t address, char* out, size_t size) noexcept;

// An alternate signal stack for the calling thread, for as long as it
// lives, so that the handler still runs when the thread crashed by
// overflowing its own stack. One per thread that runs plugin code (main()
// for the loop, each worker). Restores the thread's previous one when it
// goes (a sanitizer's, say). THREAD: the owning thread, which must destroy
// it.
class AltSignalStack {
 public:
  AltSignalStack();
  ~AltSignalStack();
  AltSignalStack(const AltSignalStack&) = delete;
  AltSignalStack& operator=(const AltSignalStack&) = delete;

 private:
  void* memory_ = nullptr;
  size_t size_ = 0;
  bool installed_ = false;
  // The previous stack, as sigaltstack(2) reported it.
  void* old_sp_ = nullptr;
  size_t old_size_ = 0;
  int old_flags_ = 0;
};

}  // namespace evh
