// YAML -> typed Config: evhost's schema, read with YamlReader so that every
// problem is reported with file:line and the dotted key path. This file: the
// entry points, the top-level keys, limits and logging; each other section
// has a file of its own (see loader.h).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>
#include <system_error>
#include <utility>

#include <yaml-cpp/eventhandler.h>

#include "config/loader.h"
#include "config/sha256.h"
#include "event/limits.h"

namespace evh::config {
namespace {

const std::vector<std::string> kLogLevels = {"trace", "debug", "info", "warn", "error", "critical", "off"};
const std::vector<std::string> kLogFormats = {"text", "json"};

// Counts the documents of a YAML stream without building them, noting where
// the second one's content starts, and whether the parser is stuck: yaml-cpp
// 0.7 (Debian 12) returns an empty document for ever, without moving on, at
// some malformed text (a file holding only ","), which made YAML::LoadAll
// loop until memory ran out (fixed upstream after 0.8). Found by the config
// fuzz harness.
class DocumentCounter : public YAML::EventHandler {
 public:
  size_t count() const { return count_; }
  const YAML::Mark& second() const { return second_; }
  // The last two documents started at the same place.
  bool stuck() const { return count_ >= 2 && last_.pos == previous_.pos; }

  void OnDocumentStart(const YAML::Mark&) override {
    ++count_;
    first_event_ = true;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t, const std::string&) override { node(mark); }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    node(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    node(mark);
  }
  void OnMapEnd() override {}

 private:
  void node(const YAML::Mark& mark) {
    if (!first_event_) {
      return;
    }
    first_event_ = false;
    previous_ = last_;
    last_ = mark;
    if (count_ == 2) {
      second_ = mark;
    }
  }

  size_t count_ = 0;
  bool first_event_ = false;
  YAML::Mark second_ = YAML::Mark::null_mark();
  YAML::Mark last_ = YAML::Mark::null_mark();
  YAML::Mark previous_ = YAML::Mark::null_mark();
};

bool isEnvironmentChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

// Closes a descriptor on every way out.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;

 private:
  int fd_;
};

const char* fileKind(mode_t mode) {
  if (S_ISFIFO(mode)) {
    return "a FIFO";
  }
  if (S_ISSOCK(mode)) {
    return "a socket";
  }
  if (S_ISCHR(mode)) {
    return "a character device";
  }
  if (S_ISBLK(mode)) {
    return "a block device";
  }
  return "a special file";
}

// The whole of the regular file `path` into `out`; the reason, naming the
// path, when it cannot be read. O_NONBLOCK, and only a regular file: a FIFO
// (or device) put at the config path must not block the reader -- a
// reload's read runs on libuv's thread pool, which a stuck read would hold,
// and evhost's exit with it.
std::optional<std::string> readRegularFile(const std::string& path, std::string& out) {
  const auto failed = [&](int err) {
    return path + ": cannot read config file: " + std::generic_category().message(err);
  };
  int fd = -1;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    return failed(errno);
  }
  const FdCloser closer(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return failed(errno);
  }
  if (S_ISDIR(st.st_mode)) {
    return failed(EISDIR);
  }
  if (!S_ISREG(st.st_mode)) {
    return path + ": cannot read config file: it is " + fileKind(st.st_mode) + ", not a regular file";
  }
  char buffer[8192];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return failed(errno);
    }
    if (n == 0) {
      return std::nullopt;
    }
    out.append(buffer, static_cast<size_t>(n));
  }
}

LoadResult loadImpl(const std::string& yaml, const std::string& file_name, const std::string& config_dir,
                    const EnvLookup& env, LoadOptions options = {}) {
  try {
    return Loader(file_name, config_dir, env, options).load(yaml);
  } catch (const std::exception& e) {
    // Loader::load reports its own failures; this is for running out of
    // memory while doing so, since the callers are promised no exceptions.
    LoadResult result;
    result.errors.push_back(file_name + ": cannot load configuration: " + e.what());
    return result;
  }
}

}  // namespace

LoadResult Loader::load(const std::string& yaml) {
  LoadResult result;
  try {
    parse(yaml);
  } catch (const YAML::ParserException& e) {
    // Nothing after a syntax error is trustworthy, so it is reported alone.
    std::string what = e.msg;
    if (what.find("alias") != std::string::npos) {
      // The likeliest cause in this schema is an unquoted `events: *`.
      what += " (a \"*\" value must be quoted: \"*\")";
    }
    result.errors.push_back(file() + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                            ": YAML syntax error: " + what);
    result.from_environment = takeFromEnvironment();
    return result;
  } catch (const std::exception& e) {
    error(YAML::Mark::null_mark(), "", std::string("cannot load configuration: ") + e.what());
  }
  result.errors = takeErrors();
  result.from_environment = takeFromEnvironment();
  if (result.errors.empty()) {
    result.config = std::move(config_);
  }
  return result;
}

void Loader::parse(const std::string& yaml) {
  config_.file = file();
  config_.dead_letter.origin = Origin{file(), 0, "dead_letter"};
  config_.ops.origin = Origin{file(), 0, "ops.listen"};
  // Not YAML::LoadAll, which can loop for ever (DocumentCounter): the
  // documents are counted first (up to a bound), and only the first is built.
  constexpr size_t kMaxDocuments = 100;
  std::istringstream stream(yaml);
  YAML::Parser parser(stream);
  DocumentCounter counter;
  while (counter.count() < kMaxDocuments && parser.HandleNextDocument(counter)) {
    if (counter.stuck()) {
      error(counter.second(), "", "not YAML here: the parser cannot go on");
      return;
    }
  }
  if (counter.count() > 1) {
    const std::string found =
        counter.count() < kMaxDocuments ? std::to_string(counter.count()) : std::to_string(kMaxDocuments) + " or more";
    error(counter.second(), "", "expected one YAML document, found " + found);
    return;
  }
  const YAML::Node root = YAML::Load(yaml);
  if (counter.count() == 0 || root.IsNull()) {
    error(YAML::Mark::null_mark(), "", "empty configuration");
    return;
  }
  if (!root.IsMap()) {
    error(root.Mark(), "", "expected a map of top-level keys, got " + kindOf(root));
    return;
  }
  const Entry top{"", root, root, ""};
  readFields(
      top,
      {
          {"environment", [this](const Entry& e) { readEnvironment(e); }},
          {"redis", [this](const Entry& e) { readRedis(e); }},
          {"plugins", [this](const Entry& e) { readPlugins(e); }},
          {"channels", [this](const Entry& e) { readChannels(e); }},
          {"limits", [this](const Entry& e) { readLimits(e); }},
          {"logging", [this](const Entry& e) { readLogging(e); }},
          {"retry", [this](const Entry& e) { readRetryKeys(e, root_retry_); }},
          {"circuit_breaker", [this](const Entry& e) { readBreakerKeys(e, root_breaker_); }},
          {"dead_letter", [this](const Entry& e) { readDeadLetter(e); }},
          {"workers", [this](const Entry& e) { readInteger(e, config_.workers, 1, 256); }},
          {"shutdown_timeout_ms", [this](const Entry& e) { readInteger(e, config_.shutdown_timeout_ms, 0, kU32Max); }},
          {"loop_stall_ms", [this](const Entry& e) { readInteger(e, config_.loop_stall_ms, 100, 3600000); }},
          {"state_dir", [this](const Entry& e) { readString(e, config_.state_dir); }},
          {"ops", [this](const Entry& e) { readOps(e); }},
      });
  // After the walk: `retry:` and `circuit_breaker:` may come after the
  // routes and plugins that inherit from them.
  resolveRetry();
  resolveBreakers();
  checkPluginReferences();
}

void Loader::readEnvironment(const Entry& e) {
  const std::optional<std::string> value = text(e, "a string");
  if (!value) {
    return;
  }
  if (!std::all_of(value->begin(), value->end(), isEnvironmentChar)) {
    error(valueMark(e), e.path,
          expectedGot("only letters, digits, \"_\", \".\" and \"-\"", gotValue(e.value.Scalar(), *value)));
    return;
  }
  config_.environment = *value;
}

void Loader::readLimits(const Entry& owner) {
  Limits& limits = config_.limits;
  readFields(
      owner,
      {
          // The decoder's own bounds (event/limits.h): a value it would
          // refuse at start-up is refused here, with file:line.
          {"max_message_bytes",
           [&](const Entry& e) { readInteger(e, limits.max_message_bytes, 1, event::kMaxSupportedMessageBytes); }},
          {"max_in_flight", [&](const Entry& e) { readInteger(e, limits.max_in_flight, 1, kU32Max); }},
          {"max_json_depth",
           [&](const Entry& e) { readInteger(e, limits.max_json_depth, 1, event::kMaxSupportedJsonDepth); }},
          {"max_dead_letter_bytes",
           [&](const Entry& e) { readInteger(e, limits.max_dead_letter_bytes, 65536, kU32Max); }},
      });
}

void Loader::readLogging(const Entry& owner) {
  Logging& logging = config_.logging;
  readFields(owner, {
                        {"level",
                         [&](const Entry& e) {
                           if (const std::optional<size_t> i = readChoice(e, kLogLevels)) {
                             logging.level = kLogLevels[*i];
                           }
                         }},
                        {"format",
                         [&](const Entry& e) {
                           if (const std::optional<size_t> i = readChoice(e, kLogFormats)) {
                             logging.format = *i == 0 ? LogFormat::Text : LogFormat::Json;
                           }
                         }},
                        {"debug_events", [&](const Entry& e) { readBool(e, logging.debug_events); }},
                    });
}

LoadResult loadFile(const std::string& path, const EnvLookup& env, LoadOptions options) {
  std::string yaml;
  if (std::optional<std::string> why = readRegularFile(path, yaml)) {
    LoadResult result;
    result.errors.push_back(std::move(*why));
    return result;
  }
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  if (ec) {
    absolute = path;  // no current directory: keep what was given
  }
  std::string dir = absolute.lexically_normal().parent_path().string();
  if (dir.empty()) {
    dir = ".";
  }
  LoadResult result = loadImpl(yaml, path, dir, env, options);
  if (result.config) {
    result.config->file_sha256 = sha256Hex(yaml);
  }
  return result;
}

LoadResult loadString(const std::string& yaml, const std::string& file_name, const EnvLookup& env) {
  std::string dir = std::filesystem::path(file_name).parent_path().string();
  if (dir.empty()) {
    dir = ".";
  }
  return loadImpl(yaml, file_name, dir, env);
}

}  // namespace evh::config
