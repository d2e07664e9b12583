// Building dead-letter entries; the fallback file writer thread.
#include "dispatch/dead_letter.h"

#include "common/log.h"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <vector>

namespace evh::dispatch {
namespace {

// Insertion order: the entry reads in the documented order, and the original
// event keeps its own key order (a replay publishes it as it came).
using Json = nlohmann::ordered_json;

std::atomic<uint64_t> g_sequence{0};

std::string dump(const Json& j) {
  // Raw bytes from the wire need not be UTF-8: replace, never throw.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Json base(const DeadLetterInfo& info, std::string& id) {
  uint64_t now = wallMs();
  id = "dlq-" + std::to_string(now) + "-" + std::to_string(g_sequence.fetch_add(1) + 1);
  Json j;
  j["id"] = id;
  j["reason"] = info.reason;
  j["plugin"] = info.plugin;
  j["error"] = {{"name", info.error_name}, {"message", info.error_message}};
  j["attempts"] = info.attempts;
  j["retryCount"] = info.attempts > 0 ? info.attempts - 1 : 0;  // the plan's field
  if (info.first_attempt_ms != 0) {
    j["firstAttemptAt"] = isoTime(info.first_attempt_ms);
    j["lastAttemptAt"] = isoTime(info.last_attempt_ms);
  }
  j["timestamp"] = isoTime(now);
  return j;
}

}  // namespace

uint64_t wallMs() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

std::string isoTime(uint64_t epoch_ms) {
  std::time_t secs = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<unsigned>(epoch_ms % 1000));
  return buf;
}

DeadLetterEntry makeEntry(const DeadLetterInfo& info, const event::Event& ev) {
  DeadLetterEntry e;
  Json j = base(info, e.id);
  j["eventId"] = std::string(ev.eventId());
  j["eventType"] = std::string(ev.eventType());
  j["correlationId"] = std::string(ev.correlationId());
  j["channel"] = std::string(ev.channel());
  j["redisChannel"] = std::string(ev.redisChannel());
  // The decoder guarantees the envelope is valid JSON.
  j["originalEvent"] = Json::parse(ev.envelope(), nullptr, false);
  e.event_id = ev.eventId();
  e.correlation_id = ev.correlationId();
  e.json = dump(j);
  return e;
}

DeadLetterEntry makeEntry(const DeadLetterInfo& info, std::string_view raw, std::string_view channel,
                          std::string_view redis_channel) {
  DeadLetterEntry e;
  Json j = base(info, e.id);
  j["eventId"] = "";
  j["eventType"] = "";
  j["correlationId"] = "";
  j["channel"] = std::string(channel);
  j["redisChannel"] = std::string(redis_channel);
  j["raw"] = std::string(raw);
  e.json = dump(j);
  return e;
}

FallbackWriter::FallbackWriter(std::string path, Poster& poster)
    : path_(std::move(path)), poster_(poster), thread_([this] { run(); }) {}

FallbackWriter::~FallbackWriter() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void FallbackWriter::append(std::string line, std::function<void(bool ok)> done) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.emplace_back(std::move(line), std::move(done));
  }
  cv_.notify_one();
}

void FallbackWriter::run() {
  for (;;) {
    std::deque<std::pair<std::string, std::function<void(bool)>>> batch;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) {
        return;  // stopping, and everything is written
      }
      batch.swap(queue_);
    }
    int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    std::string error = fd < 0 ? std::strerror(errno) : "";
    std::vector<bool> ok(batch.size(), false);
    for (size_t i = 0; i < batch.size() && fd >= 0; ++i) {
      std::string line = batch[i].first + "\n";
      ok[i] = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
      if (!ok[i]) {
        error = std::strerror(errno);
      }
    }
    if (fd >= 0) {
      if (::fsync(fd) != 0) {
        error = std::strerror(errno);
        ok.assign(ok.size(), false);
      }
      ::close(fd);
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!ok[i]) {
        log::host().critical("cannot write dead-letter fallback file {}: {}; the entry follows: {}", path_, error,
                             batch[i].first);
      }
      auto done = std::move(batch[i].second);
      bool good = ok[i];
      // After the loop has closed the poster (shutdown), `done` cannot run;
      // the entry is written (or logged) all the same.
      if (good) {
        written_.fetch_add(1);
      }
      if (done) {
        poster_.post([done = std::move(done), good] { done(good); });
      }
    }
  }
}

}  // namespace evh::dispatch
