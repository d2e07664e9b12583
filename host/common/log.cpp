// Log set-up: one stderr sink shared by the host and every plugin logger,
// written synchronously or through the AsyncOutput's writer thread.
#include "common/log.h"

#include <spdlog/async.h>
#include <spdlog/sinks/sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <time.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "common/log_batched_sink.h"

namespace evh::log {
namespace {

std::mutex g_mutex;
std::shared_ptr<spdlog::logger> g_host;
spdlog::sink_ptr g_sink;
// The Async output's sink (stderr, batched); null until setup() makes it.
std::shared_ptr<BatchedStderrSink> g_batched;
Format g_format = Format::Text;
// g_output, for the fatal-signal handler (which takes no lock).
std::atomic<const AsyncOutput*> g_crash_output{nullptr};
// Output::Async's queue and writer; lives until exit, when its destructor
// writes what is left and joins the writer.
struct OutputHolder {
  std::unique_ptr<AsyncOutput> output;
  ~OutputHolder() {
    g_crash_output.store(nullptr);
    output.reset();
  }
} g_output;

void ensureLocked() {
  if (!g_host) {
    g_sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    g_sink->set_formatter(makeFormatter(g_format));
    g_host = std::make_shared<spdlog::logger>("evhost", g_sink);
    g_host->set_level(spdlog::level::info);
    g_host->flush_on(spdlog::level::warn);
    spdlog::set_default_logger(g_host);
  }
}

}  // namespace

std::optional<spdlog::level::level_enum> parseLevel(std::string_view name) {
  static constexpr std::pair<std::string_view, spdlog::level::level_enum> kLevels[] = {
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug}, {"info", spdlog::level::info},
      {"warn", spdlog::level::warn},   {"error", spdlog::level::err},   {"critical", spdlog::level::critical},
      {"off", spdlog::level::off},
  };
  for (const auto& [n, l] : kLevels) {
    if (n == name) {
      return l;
    }
  }
  return std::nullopt;
}

// Passes every line on to the real sink and counts it: the count tells the
// fatal-signal handler whether the writer is still getting anywhere.
class AsyncOutput::CountingSink final : public spdlog::sinks::sink {
 public:
  explicit CountingSink(spdlog::sink_ptr inner) : inner_(std::move(inner)) {}
  void log(const spdlog::details::log_msg& msg) override {
    try {
      inner_->log(msg);
    } catch (...) {
      written_.fetch_add(1, std::memory_order_relaxed);
      throw;
    }
    written_.fetch_add(1, std::memory_order_relaxed);
  }
  void flush() override { inner_->flush(); }
  void set_pattern(const std::string& pattern) override { inner_->set_pattern(pattern); }
  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override {
    inner_->set_formatter(std::move(formatter));
  }
  uint64_t written() const noexcept { return written_.load(std::memory_order_relaxed); }

 private:
  spdlog::sink_ptr inner_;
  std::atomic<uint64_t> written_{0};
};

// Receives drain()'s markers -- lines whose text is the marker's number --
// through the same queue as every other line: one writer thread takes the
// queue in order, so when it reaches marker n, every line logged before n
// was taken is written (or was dropped). Markers may arrive out of order
// (two threads draining at once); the highest seen is the one that counts,
// which is still right: a marker reached was posted after every lower one
// was taken.
class AsyncOutput::MarkerSink final : public spdlog::sinks::sink {
 public:
  // `lines`: the sink every other line went to, flushed before a marker
  // counts as reached (a batching sink may hold the lines before it).
  explicit MarkerSink(spdlog::sink_ptr lines) : lines_(std::move(lines)) {}
  void log(const spdlog::details::log_msg& msg) override {
    lines_->flush();
    uint64_t n = 0;
    const char* begin = msg.payload.data();
    std::from_chars(begin, begin + msg.payload.size(), n);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      reached_ = std::max(reached_, n);
    }
    cv_.notify_all();
  }
  void flush() override {}
  void set_pattern(const std::string&) override {}
  void set_formatter(std::unique_ptr<spdlog::formatter>) override {}

  bool waitFor(uint64_t n, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return reached_ >= n; });
  }

 private:
  spdlog::sink_ptr lines_;
  std::mutex mutex_;
  std::condition_variable cv_;
  uint64_t reached_ = 0;
};

AsyncOutput::AsyncOutput(spdlog::sink_ptr sink, size_t queue_lines)
    : capacity_(queue_lines),
      sink_(std::make_shared<CountingSink>(std::move(sink))),
      markers_(std::make_shared<MarkerSink>(sink_)),
      pool_(std::make_shared<spdlog::details::thread_pool>(queue_lines, 1)) {
  marker_logger_ = std::make_shared<spdlog::async_logger>("evh-drain", markers_, pool_,
                                                          spdlog::async_overflow_policy::overrun_oldest);
  marker_logger_->set_level(spdlog::level::info);
}

AsyncOutput::~AsyncOutput() {
  // The pool's destructor queues its stop behind every line and joins the
  // writer; the loggers (shared with the queued lines) may outlive it, and
  // then drop what they are given.
  pool_.reset();
}

std::shared_ptr<spdlog::logger> AsyncOutput::makeLogger(const std::string& name) {
  auto logger =
      std::make_shared<spdlog::async_logger>(name, sink_, pool_, spdlog::async_overflow_policy::overrun_oldest);
  logger->set_level(spdlog::level::info);
  logger->flush_on(spdlog::level::warn);
  return logger;
}

bool AsyncOutput::drain(std::chrono::milliseconds timeout) {
  // The marker goes through the queue like any line: into a full queue it
  // would push out the oldest line. Wait for room first (the writer is
  // taking lines, or the sink is stuck and the wait is in vain anyway).
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (queued() >= capacity_) {
    if (std::chrono::steady_clock::now() >= until) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const uint64_t n = next_marker_.fetch_add(1) + 1;
  marker_logger_->info("{}", n);
  return markers_->waitFor(
      n, std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()));
}

uint64_t AsyncOutput::dropped() const { return pool_->overrun_counter(); }

size_t AsyncOutput::queued() const { return pool_->queue_size(); }

std::function<size_t()> AsyncOutput::backlogProbe() const {
  // Weak: the writer still runs while ~AsyncOutput destroys the pool, and
  // then finds no pool (0: write at once).
  return [pool = std::weak_ptr<spdlog::details::thread_pool>(pool_)] {
    const auto p = pool.lock();
    return p ? p->queue_size() : size_t{0};
  };
}

uint64_t AsyncOutput::written() const noexcept { return sink_->written(); }

void setup(spdlog::level::level_enum level, Format format, Output output) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_format = format;
  ensureLocked();
  g_sink->set_formatter(makeFormatter(format));
  // The Async output's format is set once, here: its sink has no lock (the
  // writer thread alone uses it), so a later setup() must not touch it.
  if (output == Output::Async && !g_output.output) {
    g_batched = std::make_shared<BatchedStderrSink>();
    g_batched->set_formatter(makeFormatter(format));
    g_output.output = std::make_unique<AsyncOutput>(g_batched, kQueueLines);
    g_batched->setBacklog(g_output.output->backlogProbe());
    g_host = g_output.output->makeLogger("evhost");
    spdlog::set_default_logger(g_host);
    g_crash_output.store(g_output.output.get());
  }
  g_host->set_level(level);
}

std::shared_ptr<spdlog::logger> makeLogger(const std::string& name) {
  std::lock_guard<std::mutex> lock(g_mutex);
  ensureLocked();
  std::shared_ptr<spdlog::logger> logger;
  if (g_output.output) {
    logger = g_output.output->makeLogger(name);
  } else {
    logger = std::make_shared<spdlog::logger>(name, g_sink);
    logger->flush_on(spdlog::level::warn);
  }
  logger->set_level(g_host->level());
  return logger;
}

spdlog::logger& host() {
  std::lock_guard<std::mutex> lock(g_mutex);
  ensureLocked();
  return *g_host;
}

AsyncOutput* asyncOutput() noexcept {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_output.output.get();
}

bool drain(std::chrono::milliseconds timeout) {
  if (AsyncOutput* out = asyncOutput()) {
    return out->drain(timeout);
  }
  host().flush();
  return true;
}

void awaitWriterAfterCrash() noexcept {
  const AsyncOutput* out = g_crash_output.load();
  if (out == nullptr) {
    return;
  }
  constexpr long kStepNs = 5000000;  // 5 ms
  constexpr int kIdleSteps = 4;      // nothing written for 20 ms: done, or stuck
  constexpr int kMaxSteps = 100;     // 500 ms at most
  uint64_t last = out->written();
  int idle = 0;
  for (int i = 0; i < kMaxSteps && idle < kIdleSteps; ++i) {
    timespec ts{0, kStepNs};
    nanosleep(&ts, nullptr);
    const uint64_t now = out->written();
    idle = now == last ? idle + 1 : 0;
    last = now;
  }
}

}  // namespace evh::log
