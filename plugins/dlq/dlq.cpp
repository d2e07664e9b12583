// dlq: the bundled dead-letter plugin: keeps entries in a capped Redis list, spooled to a local file while Redis is
// down.
//
// The host hands every dead-lettered event to this plugin as one JSON entry
// (docs/dlq.md has the format, the config and the guarantees). handle() runs
// on a worker thread (EVH_PLUGIN_BLOCKING, one call at a time): it LPUSHes the
// entry byte-exact to <prefix><key> and LTRIMs the list to max_length. When
// Redis does not answer, the entry is appended to the spool file and fsync'd
// instead, and a thread owned by the plugin pushes the spool to Redis once it
// answers again. Delivery from the spool is at-least-once: a crash (or a reply
// lost in transit) during a flush may push some entries twice.
#include <evh/plugin.hpp>

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

// How long one round of commands may take before the entry is spooled
// instead. It blocks a worker thread (allowed: the plugin is blocking), never
// the loop.
constexpr std::chrono::milliseconds kReplyTimeout{2000};
// handle() pushes older spooled entries before its own (to keep the list in
// order), starting no new batch after this long, so that one call stays
// inside the host's dead-letter timeout (5 s by default) even with a slow
// reply on top; the rest is left to the flusher.
constexpr std::chrono::milliseconds kHandleFlushBudget{500};
// One flusher pass starts no new batch after this long, so that it does not
// hold the spool lock (which handle() needs) for long; the next pass follows
// at once while progress is made.
constexpr std::chrono::milliseconds kFlusherPassBudget{500};
// Spooled entries are pushed with one LPUSH per batch (atomic in Redis).
constexpr size_t kBatchEntries = 100;
constexpr size_t kBatchBytes = 1024 * 1024;

constexpr int64_t kMaxLengthLimit = 100000000;
constexpr int64_t kMinFlushMs = 10;
constexpr int64_t kMaxFlushMs = 3600000;

std::string errnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

std::string quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

// ---- configuration ----------------------------------------------------------

struct Settings {
  std::string key = "jollyjet:events:dlq";  // logical: the Redis key is env prefix + key
  int64_t max_length = 10000;
  std::string spool_file = "dlq-spool.jsonl";  // relative: to the process working directory
  int64_t flush_interval_ms = 1000;
};

[[noreturn]] void badValue(const std::string& key, const std::string& rule, const Json& got) {
  throw std::invalid_argument("config key " + quote(key) + ": " + rule + ", got " +
                              got.dump(-1, ' ', false, Json::error_handler_t::replace));
}

int64_t integerIn(const Json& j, const std::string& key, int64_t lo, int64_t hi) {
  std::string rule = "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
  if (!j.is_number_integer()) {
    badValue(key, rule, j);
  }
  if (j.is_number_unsigned() && j.get<uint64_t>() > static_cast<uint64_t>(hi)) {
    badValue(key, rule, j);
  }
  auto v = j.get<int64_t>();
  if (v < lo || v > hi) {
    badValue(key, rule, j);
  }
  return v;
}

std::string nonEmptyString(const Json& j, const std::string& key) {
  if (!j.is_string() || j.get_ref<const std::string&>().empty()) {
    badValue(key, "must be a non-empty string", j);
  }
  return j.get<std::string>();
}

std::string dirOf(const std::string& file) {
  std::filesystem::path p(file);
  return p.has_parent_path() ? p.parent_path().string() : std::string(".");
}

// A spool that could never be written is a deployment mistake: refuse to
// start rather than find out during the first Redis outage.
void checkSpoolPath(const std::string& file) {
  if (std::filesystem::path(file).filename().empty()) {
    throw std::invalid_argument("config key \"spool_file\": " + quote(file) + " does not name a file");
  }
  std::string dir = dirOf(file);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    throw std::invalid_argument("config key \"spool_file\": folder " + quote(dir) + " of " + quote(file) + ": " +
                                errnoText(errno));
  }
  if (!S_ISDIR(st.st_mode)) {
    throw std::invalid_argument("config key \"spool_file\": " + quote(dir) + " is not a folder");
  }
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    throw std::invalid_argument("config key \"spool_file\": folder " + quote(dir) +
                                " is not writable: " + errnoText(errno));
  }
  if (::stat(file.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    throw std::invalid_argument("config key \"spool_file\": " + quote(file) + " exists and is not a regular file");
  }
}

Settings parseSettings(std::string_view text) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    throw std::invalid_argument("config must be a map (got " + std::string(text) + ")");
  }
  Settings s;
  for (const auto& [name, value] : j.items()) {
    if (name == "key") {
      s.key = nonEmptyString(value, name);
    } else if (name == "max_length") {
      s.max_length = integerIn(value, name, 1, kMaxLengthLimit);
    } else if (name == "spool_file") {
      s.spool_file = nonEmptyString(value, name);
    } else if (name == "flush_interval_ms") {
      s.flush_interval_ms = integerIn(value, name, kMinFlushMs, kMaxFlushMs);
    } else {
      throw std::invalid_argument("unknown config key " + quote(name) +
                                  " (known: key, max_length, spool_file, flush_interval_ms)");
    }
  }
  checkSpoolPath(s.spool_file);
  return s;
}

// ---- entries and spool lines --------------------------------------------------

// A dead-letter entry is one JSON object. Checking it up front keeps a torn
// spool line (not JSON) distinguishable from an entry.
bool isEntry(std::string_view text) {
  size_t first = text.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && text[first] == '{' && Json::accept(text.begin(), text.end());
}

// One spool line per entry. The host's entries are compact JSON (no line
// breaks); an entry that has some anyway (only possible as whitespace between
// tokens) is spooled as a JSON string holding it, which keeps it byte-exact.
std::string spoolLine(std::string_view entry) {
  if (entry.find_first_of("\r\n") == std::string_view::npos) {
    return std::string(entry);
  }
  return Json(std::string(entry)).dump();
}

// The entry a spool line holds; nullopt for a corrupt line (a write cut short
// by a crash, or a line edited by hand).
std::optional<std::string> entryOfLine(std::string_view line) {
  size_t first = line.find_first_not_of(" \t\r");
  if (first != std::string_view::npos && line[first] == '"') {
    Json j = Json::parse(line.begin(), line.end(), nullptr, false);
    if (j.is_string() && isEntry(j.get_ref<const std::string&>())) {
      return j.get<std::string>();
    }
    return std::nullopt;
  }
  if (!isEntry(line)) {
    return std::nullopt;
  }
  return std::string(line);
}

std::string preview(std::string_view s) {
  constexpr size_t kMax = 200;
  return s.size() <= kMax ? std::string(s) : std::string(s.substr(0, kMax)) + "...";
}

// ---- file I/O (the spool) -----------------------------------------------------

class Fd {
 public:
  explicit Fd(int fd) noexcept : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const noexcept { return fd_; }

 private:
  int fd_;
};

bool writeAll(int fd, std::string_view data, std::string& error) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      error = errnoText(errno);
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool syncFd(int fd, std::string& error) {
  if (::fsync(fd) != 0) {
    error = "fsync: " + errnoText(errno);
    return false;
  }
  return true;
}

// Makes a created or renamed file's name durable too.
bool syncDir(const std::string& dir, std::string& error) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) {
    error = "open folder " + dir + ": " + errnoText(errno);
    return false;
  }
  return syncFd(fd.get(), error);
}

// Appends `line` and a newline, durably, before returning true.
bool appendLine(const std::string& path, std::string_view line, std::string& error) {
  struct stat st {};
  bool existed = ::stat(path.c_str(), &st) == 0;
  Fd fd(::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
  if (fd.get() < 0) {
    error = "open: " + errnoText(errno);
    return false;
  }
  if (::fstat(fd.get(), &st) != 0) {
    error = "fstat: " + errnoText(errno);
    return false;
  }
  std::string data;
  data.reserve(line.size() + 2);
  if (st.st_size > 0) {
    // A crash in the middle of an earlier append may have left a last line
    // without its newline: start a fresh line rather than glue this entry to
    // the fragment (which the flusher then drops as corrupt).
    char last = '\n';
    if (::pread(fd.get(), &last, 1, st.st_size - 1) == 1 && last != '\n') {
      data.push_back('\n');
    }
  }
  data.append(line);
  data.push_back('\n');
  if (!writeAll(fd.get(), data, error) || !syncFd(fd.get(), error)) {
    // Best effort: do not leave half an entry behind (the caller answers
    // RETRY, so the host keeps the entry in its own fallback file).
    if (::ftruncate(fd.get(), st.st_size) == 0) {
      (void)::fsync(fd.get());
    }
    return false;
  }
  if (!existed) {
    std::string dir_error;
    (void)syncDir(dirOf(path), dir_error);  // the data itself is durable; a new name is very nearly so
  }
  return true;
}

// Reads the whole file; a missing file reads as empty.
bool readAll(const std::string& path, std::string& out, std::string& error) {
  out.clear();
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) {
      return true;
    }
    error = "open: " + errnoText(errno);
    return false;
  }
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      error = "read: " + errnoText(errno);
      return false;
    }
    if (n == 0) {
      return true;
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

// Replaces the file with `lines` atomically (write a temporary, fsync, rename),
// so that a crash leaves either the old or the new spool, never a mix.
bool rewriteLines(const std::string& path, const std::vector<std::string_view>& lines, std::string& error) {
  std::string tmp = path + ".tmp";
  {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (fd.get() < 0) {
      error = "open " + tmp + ": " + errnoText(errno);
      return false;
    }
    std::string data;
    for (auto l : lines) {
      data.append(l);
      data.push_back('\n');
    }
    if (!writeAll(fd.get(), data, error) || !syncFd(fd.get(), error)) {
      ::unlink(tmp.c_str());
      return false;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    error = "rename " + tmp + ": " + errnoText(errno);
    ::unlink(tmp.c_str());
    return false;
  }
  return syncDir(dirOf(path), error);
}

bool truncateFile(const std::string& path, std::string& error) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) {
      return true;
    }
    error = "truncate: " + errnoText(errno);
    return false;
  }
  return syncFd(fd.get(), error);
}

bool fileHasData(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

std::vector<std::string_view> splitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (line.find_first_not_of(" \t\r") != std::string_view::npos) {
      lines.push_back(line);
    }
    if (nl == std::string_view::npos) {
      break;
    }
    text.remove_prefix(nl + 1);
  }
  return lines;
}

// ---- waiting for Redis on a worker thread ---------------------------------------

// Wakes whoever waits in the plugin: reply callbacks (loop thread) and the
// destructor signal it. Reply callbacks hold it by shared_ptr, so a reply
// that arrives after its waiter gave up still touches live memory only.
struct Signal {
  std::mutex mutex;
  std::condition_variable cv;
  bool stop = false;  // the plugin is being destroyed
};

// The replies of one round of pipelined commands; guarded by Signal::mutex.
struct Round {
  struct Slot {
    bool done = false;
    bool ok = false;
    bool cancelled = false;
    int64_t integer = 0;  // an integer reply's value
    std::string error;
  };
  explicit Round(size_t n) : slots(n) {}
  std::vector<Slot> slots;
};

struct Answer {
  bool ok = false;
  bool stopped = false;  // the host or the plugin is shutting down: not an outage
  int64_t integer = 0;   // an integer reply's value (LPUSH: the list's new length)
  std::string error;
};

std::string describeSendStatus(evh_status s) {
  switch (s) {
    case EVH_ERR_UNAVAILABLE:
      return "redis unavailable";
    case EVH_ERR_CANCELLED:
      return "host shutting down";
    case EVH_ERR_NOMEM:
      return "out of memory";
    default:
      return "redis_command refused (status " + std::to_string(s) + ")";
  }
}

enum class Store { Ok, Failed, Stopped };
// What one flush pass achieved.
enum class Pass { Empty, Done, OutOfTime, Failed };

// ---- the plugin -----------------------------------------------------------------

class Dlq final : public evh::Plugin {
 public:
  static constexpr uint32_t kFlags = EVH_PLUGIN_BLOCKING;  // file I/O and waits for Redis
  static constexpr uint32_t kMaxConcurrency = 1;
  static constexpr const char* kDescription =
      "dead-letter queue: entries in a capped Redis list, spooled to a file while Redis is down";

  Dlq(evh::Host host, std::string_view config_json)
      : Plugin(host),
        settings_(parseSettings(config_json)),
        redis_key_(std::string(host.envPrefix()) + settings_.key),
        trim_stop_(std::to_string(settings_.max_length - 1)),
        stored_(host.counter("stored", "dead-letter entries stored in Redis directly")),
        spooled_(host.counter("spooled", "dead-letter entries appended to the spool file")),
        flushed_(host.counter("flushed", "spooled entries pushed to Redis")),
        corrupt_(host.counter("spool_corrupt", "corrupt spool lines dropped")),
        evicted_(host.counter("evicted", "oldest entries trimmed off the list by max_length")),
        pending_gauge_(host.gauge("spool_pending", "entries in the spool file, not yet in Redis")),
        length_gauge_(host.gauge("list_length",
                                 "entries in the dead-letter list (LLEN), as of the last push or "
                                 "flush interval")),
        signal_(std::make_shared<Signal>()) {
    host.info("dead-letter entries go to " + redis_key_ + " (newest first, at most " +
              std::to_string(settings_.max_length) + "); spool file " + settings_.spool_file);
    // Last: nothing may throw once the thread runs.
    flusher_ = std::thread([this] { runFlusher(); });
  }

  // Runs on the loop thread at shutdown: signal the flusher and join it. Its
  // waits (the interval, a reply) end at once on the signal.
  ~Dlq() override {
    {
      std::lock_guard<std::mutex> lock(signal_->mutex);
      signal_->stop = true;
    }
    signal_->cv.notify_all();
    if (flusher_.joinable()) {
      flusher_.join();
    }
  }

  evh::Result handle(const evh::Event& ev, evh::Call& /*call*/) override {
    std::string_view entry = ev.payload();
    if (!isEntry(entry)) {
      return evh::Result::reject("dlq: the dead-letter entry is not a JSON object (" + std::to_string(entry.size()) +
                                 " bytes: " + preview(entry) + ")");
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (fileHasData(settings_.spool_file)) {
      // Older entries first, so that the list stays newest-first. During an
      // outage the flusher finds out when Redis is back; no need to try here.
      if (!outage_) {
        flushPass(Clock::now() + kHandleFlushBudget);
      }
      if (fileHasData(settings_.spool_file)) {
        return spool(ev, entry, outage_ ? outage_reason_ : "older entries are still being flushed");
      }
    }
    std::string error;
    Store s = push({entry}, error);
    if (s == Store::Ok) {
      stored_.add();
      noteRedisOk();
      return evh::Result::ok();
    }
    if (s == Store::Failed) {
      noteFailure(error);
    }
    return spool(ev, entry, error);
  }

 private:
  // Sends the commands pipelined and waits for every reply, kReplyTimeout or
  // the stop signal, whichever comes first. THREAD: a worker or the flusher.
  std::vector<Answer> roundTrip(const std::vector<std::vector<std::string_view>>& commands) {
    auto round = std::make_shared<Round>(commands.size());
    size_t sent = 0;
    evh_status send_status = EVH_OK;
    for (size_t i = 0; i < commands.size(); ++i) {
      // The callback may run before command() returns (on the loop thread,
      // or inline in a test double): no lock of ours is held here.
      send_status = host().command(commands[i], [signal = signal_, round, i](const evh::Reply& r) {
        std::lock_guard<std::mutex> lock(signal->mutex);
        Round::Slot& slot = round->slots[i];
        slot.done = true;
        slot.ok = r.ok();
        slot.integer = r.type() == EVH_REPLY_INTEGER ? r.integer() : 0;
        slot.cancelled = r.status() == EVH_ERR_CANCELLED;
        if (!slot.ok) {
          slot.error = r.describe();
        }
        signal->cv.notify_all();
      });
      if (send_status != EVH_OK) {
        break;
      }
      ++sent;
    }
    std::vector<Answer> answers(commands.size());
    std::unique_lock<std::mutex> lock(signal_->mutex);
    signal_->cv.wait_for(lock, kReplyTimeout, [&] {
      if (signal_->stop) {
        return true;
      }
      for (size_t i = 0; i < sent; ++i) {
        if (!round->slots[i].done) {
          return false;
        }
      }
      return true;
    });
    for (size_t i = 0; i < commands.size(); ++i) {
      const Round::Slot& slot = round->slots[i];
      Answer& a = answers[i];
      if (i < sent && slot.done) {
        a.ok = slot.ok;
        a.integer = slot.integer;
        a.stopped = slot.cancelled;
        a.error = slot.error;
      } else if (i < sent) {
        a.stopped = signal_->stop;
        a.error =
            signal_->stop ? "plugin stopping" : "no reply within " + std::to_string(kReplyTimeout.count()) + " ms";
      } else if (i == sent) {
        a.stopped = send_status == EVH_ERR_CANCELLED;
        a.error = describeSendStatus(send_status);
      } else {
        a.error = "not sent";
      }
    }
    return answers;
  }

  // LPUSHes entries (oldest first: the last ends up at the head) and trims
  // the list to max_length.
  Store push(const std::vector<std::string_view>& oldest_first, std::string& error) {
    std::vector<std::string_view> lpush{"LPUSH", redis_key_};
    lpush.insert(lpush.end(), oldest_first.begin(), oldest_first.end());
    std::vector<std::string_view> ltrim{"LTRIM", redis_key_, "0", trim_stop_};
    std::vector<Answer> a = roundTrip({lpush, ltrim});
    if (!a[0].ok) {
      error = "LPUSH " + redis_key_ + ": " + a[0].error;
      return a[0].stopped ? Store::Stopped : Store::Failed;
    }
    length_gauge_.set(a[1].ok ? std::min(a[0].integer, settings_.max_length) : a[0].integer);
    if (!a[1].ok && !a[1].stopped) {
      // The entries are stored; the list is merely longer than max_length
      // until a later LTRIM succeeds.
      host().warn("LTRIM " + redis_key_ + " failed: " + a[1].error);
    } else if (a[1].ok && a[0].integer > settings_.max_length) {
      // The list keeps the newest max_length: older entries just left it.
      // A retention policy, but never a silent one.
      const int64_t evicted = a[0].integer - settings_.max_length;
      evicted_.add(evicted);
      evicted_since_log_ += evicted;
      const auto now = std::chrono::steady_clock::now();
      if (now - last_evicted_log_ >= std::chrono::seconds(10)) {
        host().warn(std::to_string(evicted_since_log_) + " oldest entr" + (evicted_since_log_ == 1 ? "y" : "ies") +
                    " left " + redis_key_ + " (max_length " + std::to_string(settings_.max_length) +
                    ") since the last such line; evhctl dlq list/replay before they go, or raise max_length");
        evicted_since_log_ = 0;
        last_evicted_log_ = now;
      }
    }
    return Store::Ok;
  }

  // Appends the entry to the spool. THREAD: worker, with mutex_ held.
  evh::Result spool(const evh::Event& ev, std::string_view entry, const std::string& why) {
    std::string error;
    if (!appendLine(settings_.spool_file, spoolLine(entry), error)) {
      host().error("cannot spool dead-letter entry " + std::string(ev.id()) + " to " + settings_.spool_file + ": " +
                   error);
      return evh::Result::retry("dlq: not stored: Redis: " + why + "; spool file " + settings_.spool_file + ": " +
                                error);
    }
    spooled_.add();
    setPending(pending_ + 1);
    if (host().logEnabled(evh::LogLevel::Debug)) {
      host().debug("spooled dead-letter entry " + std::string(ev.id()) + " (" + why + ")");
    }
    return evh::Result::ok();
  }

  // Pushes the spool to Redis in order, oldest first, until it is empty, a
  // push fails, or `deadline` passes; then truncates the spool, or rewrites
  // it with what was not pushed. A crash between a push and the rewrite
  // pushes those entries again on the next run (at-least-once).
  // THREAD: worker or flusher, with mutex_ held.
  Pass flushPass(Clock::time_point deadline) {
    std::string content;
    std::string error;
    if (!readAll(settings_.spool_file, content, error)) {
      host().error("cannot read spool file " + settings_.spool_file + ": " + error);
      return Pass::Failed;
    }
    std::vector<std::string_view> lines;
    std::vector<std::string> entries;
    size_t corrupt = 0;
    for (auto line : splitLines(content)) {
      std::optional<std::string> e = entryOfLine(line);
      if (!e) {
        ++corrupt;
        host().error("dropping a corrupt line of spool file " + settings_.spool_file +
                     " (an append cut short by a crash?): " + preview(line));
        continue;
      }
      lines.push_back(line);
      entries.push_back(std::move(*e));
    }
    if (corrupt > 0) {
      corrupt_.add(static_cast<int64_t>(corrupt));
    }
    Pass result = Pass::Done;
    size_t pushed = 0;
    while (pushed < entries.size()) {
      if (Clock::now() >= deadline) {
        result = Pass::OutOfTime;
        break;
      }
      if (stopping()) {
        result = Pass::Failed;
        break;
      }
      size_t end = pushed;
      size_t bytes = 0;
      std::vector<std::string_view> batch;
      while (end < entries.size() && batch.size() < kBatchEntries &&
             (batch.empty() || bytes + entries[end].size() <= kBatchBytes)) {
        bytes += entries[end].size();
        batch.push_back(entries[end]);
        ++end;
      }
      Store s = push(batch, error);
      if (s != Store::Ok) {
        if (s == Store::Failed) {
          noteFailure(error);
        }
        result = Pass::Failed;
        break;
      }
      flushed_.add(static_cast<int64_t>(batch.size()));
      pushed = end;
      noteRedisOk();
    }
    bool rewritten = true;
    if (pushed == entries.size()) {
      if (!content.empty()) {
        rewritten = truncateFile(settings_.spool_file, error);
      }
    } else if (pushed > 0 || corrupt > 0) {
      rewritten = rewriteLines(
          settings_.spool_file,
          std::vector<std::string_view>(lines.begin() + static_cast<std::ptrdiff_t>(pushed), lines.end()), error);
    }
    if (!rewritten) {
      host().error("cannot rewrite spool file " + settings_.spool_file + " (" + error + "): its " +
                   std::to_string(pushed) + " entries already in Redis will be pushed again");
      setPending(static_cast<int64_t>(entries.size()));
      return Pass::Failed;
    }
    setPending(static_cast<int64_t>(entries.size() - pushed));
    if (pushed > 0) {
      host().info("flushed " + std::to_string(pushed) + " spooled dead-letter entries to " + redis_key_ +
                  (pushed < entries.size() ? "; " + std::to_string(entries.size() - pushed) + " still spooled" : ""));
    }
    return entries.empty() ? Pass::Empty : result;
  }

  // The flusher thread: counts what an earlier run left in the spool, then
  // every flush_interval_ms pushes the spool while Redis answers.
  void runFlusher() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      countSpool();
    }
    auto interval = std::chrono::milliseconds(settings_.flush_interval_ms);
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(signal_->mutex);
        if (signal_->cv.wait_for(lock, interval, [&] { return signal_->stop; })) {
          return;
        }
      }
      for (;;) {
        std::lock_guard<std::mutex> lock(mutex_);  // released between passes: handle() may run
        if (stopping()) {
          break;
        }
        if (!fileHasData(settings_.spool_file)) {
          if (pending_ != 0) {
            setPending(0);  // the file was removed or emptied by hand
          }
          break;
        }
        if (flushPass(Clock::now() + kFlusherPassBudget) != Pass::OutOfTime) {
          break;
        }
      }
      if (!stopping()) {
        refreshLength();
      }
    }
  }

  // The list's length as Redis has it: replays (evhctl dlq replay) and
  // deletions shorten it without a push. One LLEN per flush interval.
  // THREAD: the flusher.
  void refreshLength() {
    std::vector<Answer> a = roundTrip({{"LLEN", redis_key_}});
    if (a[0].ok) {
      length_gauge_.set(a[0].integer);
      length_warned_ = false;
    } else if (!a[0].stopped && !length_warned_) {
      // Once until it works again (an ACL without +llen, say): the gauge
      // then only follows pushes.
      host().warn("LLEN " + redis_key_ + " failed: " + a[0].error + "; list_length follows pushes only");
      length_warned_ = true;
    }
  }

  void countSpool() {
    std::string content;
    std::string error;
    if (!readAll(settings_.spool_file, content, error)) {
      host().error("cannot read spool file " + settings_.spool_file + ": " + error);
      return;
    }
    int64_t n = 0;
    for (auto line : splitLines(content)) {
      n += entryOfLine(line) ? 1 : 0;
    }
    setPending(n);
    if (n > 0) {
      host().info(std::to_string(n) + " dead-letter entries are in spool file " + settings_.spool_file +
                  " from an earlier run; they go to " + redis_key_ + " once Redis answers");
    }
  }

  bool stopping() {
    std::lock_guard<std::mutex> lock(signal_->mutex);
    return signal_->stop;
  }

  // Logged once per outage, not once per entry.
  void noteFailure(const std::string& error) {
    outage_reason_ = error;
    if (!outage_) {
      outage_ = true;
      host().warn("cannot store dead-letter entries in Redis (" + error + "): spooling them to " +
                  settings_.spool_file + " and retrying every " + std::to_string(settings_.flush_interval_ms) + " ms");
    }
  }

  void noteRedisOk() {
    if (outage_) {
      outage_ = false;
      host().info("Redis answers again: dead-letter entries go to " + redis_key_);
    }
  }

  void setPending(int64_t n) {
    pending_ = n;
    pending_gauge_.set(n);
  }

  const Settings settings_;
  const std::string redis_key_;
  const std::string trim_stop_;  // LTRIM's last index: max_length - 1
  evh::Metric stored_;
  evh::Metric spooled_;
  evh::Metric flushed_;
  evh::Metric corrupt_;
  evh::Metric evicted_;
  // Eviction log throttle (push() runs one call at a time: worker or flusher
  // under mutex_).
  int64_t evicted_since_log_ = 0;
  std::chrono::steady_clock::time_point last_evicted_log_{};
  evh::Metric pending_gauge_;
  evh::Metric length_gauge_;
  bool length_warned_ = false;  // the flusher's: LLEN failed and said so
  std::shared_ptr<Signal> signal_;

  // Serializes spool access and the Redis pushes between handle() and the
  // flusher, which keeps the list in order. Lock order: mutex_, then
  // signal_->mutex.
  std::mutex mutex_;
  bool outage_ = false;        // the last push failed; guarded by mutex_
  std::string outage_reason_;  // guarded by mutex_
  int64_t pending_ = 0;        // spooled entries; guarded by mutex_

  std::thread flusher_;  // last: started once everything above exists
};

}  // namespace

EVH_PLUGIN(Dlq, "dlq", "0.1.0")
