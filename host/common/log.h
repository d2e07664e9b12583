// The one log facade: spdlog loggers in text or JSON-lines format, written
// to stderr by the logging thread (Sync) or by a writer thread from a
// bounded queue that drops lines rather than wait (Async, evhost's).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <spdlog/formatter.h>
#include <spdlog/spdlog.h>

namespace spdlog::details {
class thread_pool;
}

namespace evh::log {

enum class Format { Text, Json };

// How lines reach stderr. Sync: written by the thread that logs (evhctl,
// in-process tests, which read what a logger wrote right after). Async:
// queued to a writer thread (evhost: a slow or blocked stderr must never
// stall the event loop).
enum class Output { Sync, Async };

// Lines the Async queue holds before it drops the oldest: seconds of
// ordinary logging while stderr is held up. spdlog allocates them all at
// start, about 400 bytes each (0.8 MB); longer lines allocate the rest.
constexpr size_t kQueueLines = 2048;

// Parses "trace".."critical", "off"; nullopt for anything else.
std::optional<spdlog::level::level_enum> parseLevel(std::string_view name);

// The line format of every logger: text ("<time> <level> [<logger>] <message>",
// control characters in the message escaped as log_escape.h says) or JSON
// lines. Exposed for tests; setup() installs it.
std::unique_ptr<spdlog::formatter> makeFormatter(Format format);

// A bounded queue of log lines and the thread that writes them to a sink:
// spdlog's async logger and thread pool (one thread, so lines keep their
// order), with the overrun_oldest policy -- a full queue drops its oldest
// line to take the new one; logging never waits for the sink. spdlog 1.10
// has no counter of lines written nor a flush one can wait for: the sink is
// wrapped to count what it wrote, and drain() posts a marker line and waits
// until the writer reaches it.
class AsyncOutput {
 public:
  // Every line goes to `sink` (its formatter formats it) on the writer thread.
  AsyncOutput(spdlog::sink_ptr sink, size_t queue_lines);
  // Writes what is queued, then joins the writer: drain() first if the sink
  // may be stuck (this waits for it).
  ~AsyncOutput();
  AsyncOutput(const AsyncOutput&) = delete;
  AsyncOutput& operator=(const AsyncOutput&) = delete;

  // A logger named `name` that queues its lines here (level info, flushing
  // the sink after warn and above). THREAD: any.
  std::shared_ptr<spdlog::logger> makeLogger(const std::string& name);
  // Waits until every line logged before the call (on any thread) has been
  // written -- or dropped -- at most `timeout`. False on timeout: the sink
  // is stuck (a stderr nobody reads) or the marker itself was dropped. A
  // full queue is first given room (the marker would push a line out).
  // THREAD: any but the writer.
  bool drain(std::chrono::milliseconds timeout);
  // Lines a full queue dropped since the start. THREAD: any (the queue's mutex).
  uint64_t dropped() const;
  // Lines waiting for the writer. THREAD: any (the queue's mutex).
  size_t queued() const;
  // queued() for the writer thread's own sink (BatchedStderrSink): safe to
  // call while the output is being destroyed (0 then). THREAD: any.
  std::function<size_t()> backlogProbe() const;
  size_t capacity() const noexcept { return capacity_; }
  // Lines the sink has written. THREAD: any; async-signal-safe.
  uint64_t written() const noexcept;

 private:
  class CountingSink;
  class MarkerSink;

  size_t capacity_;
  std::shared_ptr<CountingSink> sink_;
  std::shared_ptr<MarkerSink> markers_;
  std::shared_ptr<spdlog::details::thread_pool> pool_;
  std::shared_ptr<spdlog::logger> marker_logger_;
  std::atomic<uint64_t> next_marker_{0};
};

// Configures the host logger ("evhost", to stderr), the format of every
// logger, and how lines are written. Call it once at start-up, before
// makeLogger and before any other thread starts (the Async writer thread
// inherits the signal mask): loggers made earlier keep their level, and
// write synchronously.
void setup(spdlog::level::level_enum level, Format format, Output output = Output::Sync);

// A logger tagged `name` sharing the default logger's sinks, level and format.
std::shared_ptr<spdlog::logger> makeLogger(const std::string& name);

// The host's own logger.
spdlog::logger& host();

// The Async output set up, or nullptr (Sync).
AsyncOutput* asyncOutput() noexcept;

// Every line logged so far written out, waiting at most `timeout` for an
// Async writer (Sync: flushes). False when the writer did not get there --
// stderr is stuck: the caller should then leave with _Exit, since an exit()
// would wait for the writer for ever. Call before any _Exit and before main
// returns. It BLOCKS (it sleeps while it polls the writer): for exit paths
// only, never on the event loop while it serves events. THREAD: any but the
// writer.
bool drain(std::chrono::milliseconds timeout = std::chrono::seconds(2));

// For the fatal-signal handler: gives an Async writer a moment to write what
// was queued before the crash -- returns once it has written nothing for
// 20 ms, or after about 500 ms. Async-signal-safe (atomics and nanosleep).
void awaitWriterAfterCrash() noexcept;

}  // namespace evh::log
