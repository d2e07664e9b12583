// Building dead-letter entries; the fallback file writer thread.
#include "dispatch/dead_letter.h"

#include "config/sha256.h"

#include "common/log.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <utility>
#include <vector>

namespace evh::dispatch {
namespace {

std::atomic<uint64_t> g_sequence{0};

// Appends `s` as a JSON string: quoted, escaped, and any byte sequence that
// is not UTF-8 replaced by U+FFFD (raw bytes from the wire and plugins'
// messages need not be UTF-8; an entry always is). Written by hand because
// entries are made per event under overload, when a JSON library's DOM
// would cost most.
// Bytes a JSON string cannot hold as they are (or that start a multi-byte
// sequence to check): controls, '"', '\\', and everything from 0x80.
struct Special {
  bool table[256] = {};
  constexpr Special() {
    for (int c = 0; c < 256; ++c) {
      table[c] = c < 0x20 || c >= 0x80 || c == '"' || c == '\\';
    }
  }
};
constexpr Special kSpecial;

void appendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (!kSpecial.table[c]) {
      size_t j = i + 1;
      while (j < n && !kSpecial.table[static_cast<unsigned char>(s[j])]) {
        ++j;
      }
      out.append(s.data() + i, j - i);
      i = j;
      continue;
    }
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        default: {
          const char esc[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
          out.append(esc, sizeof esc);
        }
      }
      ++i;
      continue;
    }
    // A multi-byte sequence: its length from the lead byte, then the
    // continuation bytes, no overlong forms, no surrogates, <= U+10FFFF.
    const size_t len = (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
    bool ok = len != 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    }
    if (ok) {
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0) && !(c == 0xF0 && c1 < 0x90) &&
           !(c == 0xF4 && c1 >= 0x90);
    }
    if (ok) {
      out.append(s.data() + i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  out.push_back('"');
}

// `"key":` then the value as a JSON string.
void appendField(std::string& out, std::string_view key, std::string_view value) {
  out.push_back('"');
  out.append(key);
  out += "\":";
  appendJsonString(out, value);
}

// The fields every entry starts with, in the documented order; leaves the
// object open. Returns the entry's id.
std::string appendBase(std::string& out, const DeadLetterInfo& info) {
  const uint64_t now = wallMs();
  std::string id = "dlq-" + std::to_string(now) + "-" + std::to_string(g_sequence.fetch_add(1) + 1);
  out += '{';
  appendField(out, "id", id);
  out += ',';
  appendField(out, "reason", info.reason);
  out += ',';
  appendField(out, "plugin", info.plugin);
  out += ",\"error\":{";
  appendField(out, "name", info.error_name);
  out += ',';
  appendField(out, "message", info.error_message);
  out += "},\"attempts\":";
  out += std::to_string(info.attempts);
  out += ",\"retryCount\":";  // the plan's field
  out += std::to_string(info.attempts > 0 ? info.attempts - 1 : 0);
  if (info.first_attempt_ms != 0) {
    out += ',';
    appendField(out, "firstAttemptAt", isoTime(info.first_attempt_ms));
    out += ',';
    appendField(out, "lastAttemptAt", isoTime(info.last_attempt_ms));
  }
  out += ',';
  appendField(out, "timestamp", isoTime(now));
  return id;
}

// Appends JSON text that is known to be valid without the whitespace between
// its tokens: an entry is one line of a JSON-lines file, and a publisher may
// send pretty-printed JSON. The text is kept otherwise as it came (escapes,
// key order), and this costs a fraction of a parse and a dump.
void appendCompact(std::string& out, std::string_view json) {
  const size_t start = out.size();
  out.resize(start + json.size());  // at most this long; trimmed below
  char* w = out.data() + start;
  const char* p = json.data();
  const char* const end = p + json.size();
  while (p < end) {
    const char c = *p++;
    if (c == '"') {
      // A string, copied as is up to its closing quote: the first '"' not
      // escaped by an odd run of backslashes (memchr: strings are most of
      // an event).
      const char* q = p;
      for (;;) {
        const auto* quote = static_cast<const char*>(std::memchr(q, '"', static_cast<size_t>(end - q)));
        if (quote == nullptr) {
          q = end;
          break;
        }
        size_t backslashes = 0;
        for (const char* b = quote; b > p && b[-1] == '\\'; --b) {
          ++backslashes;
        }
        q = quote + 1;
        if (backslashes % 2 == 0) {
          break;
        }
      }
      *w++ = c;
      std::memcpy(w, p, static_cast<size_t>(q - p));
      w += q - p;
      p = q;
    } else if (c != ' ' && c != '\n' && c != '\r' && c != '\t') {
      *w++ = c;
    }
  }
  out.resize(static_cast<size_t>(w - out.data()));
}

}  // namespace

DeadLetterEntry makeEntry(const DeadLetterInfo& info, const event::Event& ev) {
  DeadLetterEntry e;
  e.json.reserve(512 + ev.envelope().size());
  e.id = appendBase(e.json, info);
  e.reason = info.reason;
  for (const auto& [key, value] : {std::pair<std::string_view, std::string_view>{"eventId", ev.eventId()},
                                   {"eventType", ev.eventType()},
                                   {"correlationId", ev.correlationId()},
                                   {"channel", ev.channel()},
                                   {"redisChannel", ev.redisChannel()}}) {
    e.json += ',';
    appendField(e.json, key, value);
  }
  // originalEvent goes last, as text: the decoder guarantees the envelope is
  // valid JSON (and valid UTF-8), so it needs no parse and dump -- which
  // made an overloaded evhost slower exactly when it was busiest.
  e.json += ",\"originalEvent\":";
  appendCompact(e.json, ev.envelope());
  e.json += '}';
  e.event_id = ev.eventId();
  e.correlation_id = ev.correlationId();
  return e;
}

namespace {

// An entry for bytes that were not decoded: no event fields, `raw` instead
// of `originalEvent`; leaves the object open after `raw`.
DeadLetterEntry undecodedEntry(const DeadLetterInfo& info, std::string_view raw, std::string_view channel,
                               std::string_view redis_channel) {
  DeadLetterEntry e;
  e.json.reserve(512 + raw.size());
  e.id = appendBase(e.json, info);
  e.reason = info.reason;
  e.json += R"(,"eventId":"","eventType":"","correlationId":"",)";
  appendField(e.json, "channel", channel);
  e.json += ',';
  appendField(e.json, "redisChannel", redis_channel);
  e.json += ',';
  appendField(e.json, "raw", raw);
  return e;
}

}  // namespace

DeadLetterEntry makeEntry(const DeadLetterInfo& info, std::string_view raw, std::string_view channel,
                          std::string_view redis_channel) {
  DeadLetterEntry e = undecodedEntry(info, raw, channel, redis_channel);
  e.json += '}';
  return e;
}

DeadLetterEntry makeTooLargeEntry(const DeadLetterInfo& info, std::string_view bytes, std::string_view channel,
                                  std::string_view redis_channel) {
  DeadLetterEntry e = undecodedEntry(info, bytes.substr(0, kTooLargePrefixBytes), channel, redis_channel);
  e.json += ",\"rawTruncated\":true,\"rawBytes\":";
  e.json += std::to_string(bytes.size());
  e.json += ',';
  appendField(e.json, "rawSha256", sha256Hex(bytes));
  e.json += '}';
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
  bool was_empty = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    was_empty = queue_.empty();
    queue_.emplace_back(std::move(line), std::move(done));
  }
  // The writer sleeps only on an empty queue and then takes all of it: one
  // wake-up per batch, not one per entry (a flood of dead letters).
  if (was_empty) {
    cv_.notify_one();
  }
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
    // The batch in as few write() calls as possible: up to 1 MiB of lines
    // each; a line counts as written when all its bytes were.
    size_t next = 0;
    std::string buf;
    while (fd >= 0 && next < batch.size()) {
      buf.clear();
      std::vector<size_t> ends;  // end offset of each line in buf
      const size_t first = next;
      while (next < batch.size() && (buf.empty() || buf.size() + batch[next].first.size() < (1u << 20))) {
        buf += batch[next].first;
        buf += '\n';
        ends.push_back(buf.size());
        ++next;
      }
      size_t done = 0;
      while (done < buf.size()) {
        const ssize_t n = ::write(fd, buf.data() + done, buf.size() - done);
        if (n < 0 && errno == EINTR) {
          continue;
        }
        if (n <= 0) {
          error = n < 0 ? std::strerror(errno) : "short write";
          break;
        }
        done += static_cast<size_t>(n);
      }
      for (size_t i = 0; i < ends.size(); ++i) {
        ok[first + i] = ends[i] <= done;
      }
      if (done < buf.size()) {
        break;  // the rest of the batch fails with this error
      }
    }
    if (fd >= 0) {
      if (::fsync(fd) != 0) {
        error = std::strerror(errno);
        ok.assign(ok.size(), false);
      }
      ::close(fd);
    }
    // The batch's callbacks go back to the loop in one post (a flood of
    // dead letters must not become a flood of wake-ups). After the loop has
    // closed the poster (shutdown) they cannot run; the entries are written
    // (or logged) all the same.
    std::vector<std::pair<std::function<void(bool)>, bool>> dones;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!ok[i]) {
        log::host().critical("cannot write dead-letter fallback file {}: {}; the entry follows: {}", path_, error,
                             batch[i].first);
      }
      if (ok[i]) {
        written_.fetch_add(1);
      }
      if (batch[i].second) {
        dones.emplace_back(std::move(batch[i].second), ok[i]);
      }
    }
    if (!dones.empty()) {
      poster_.post([dones = std::move(dones)] {
        for (const auto& [done, good] : dones) {
          done(good);
        }
      });
    }
  }
}

}  // namespace evh::dispatch
