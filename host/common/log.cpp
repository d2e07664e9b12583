// Log set-up: one stderr sink shared by the host and every plugin logger.
#include "common/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <mutex>

#include "common/log_escape.h"

namespace evh::log {
namespace {

// %q: the message with control characters escaped, for text lines: a newline
// or an escape sequence in a logged value must not start a forged line.
class TextMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    appendEscaped(std::string_view(msg.payload.data(), msg.payload.size()), dest);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<TextMessageFlag>(); }
};

// %j: the message JSON-escaped, for JSON-lines output.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    static constexpr char kHex[] = "0123456789abcdef";
    for (char c : msg.payload) {
      auto u = static_cast<unsigned char>(c);
      switch (c) {
        case '"':
          dest.append(std::string_view("\\\""));
          break;
        case '\\':
          dest.append(std::string_view("\\\\"));
          break;
        case '\n':
          dest.append(std::string_view("\\n"));
          break;
        case '\r':
          dest.append(std::string_view("\\r"));
          break;
        case '\t':
          dest.append(std::string_view("\\t"));
          break;
        default:
          if (u < 0x20) {
            const char esc[] = {'\\', 'u', '0', '0', kHex[u >> 4], kHex[u & 0xF]};
            dest.append(esc, esc + sizeof(esc));
          } else {
            dest.push_back(c);
          }
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonMessageFlag>(); }
};

std::mutex g_mutex;
std::shared_ptr<spdlog::logger> g_host;
spdlog::sink_ptr g_sink;
Format g_format = Format::Text;

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

std::unique_ptr<spdlog::formatter> makeFormatter(Format format) {
  if (format == Format::Json) {
    auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    f->add_flag<JsonMessageFlag>('j').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","logger":"%n","msg":"%j"})");
    return f;
  }
  auto f = std::make_unique<spdlog::pattern_formatter>();
  f->add_flag<TextMessageFlag>('q').set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %q");
  return f;
}

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

void setup(spdlog::level::level_enum level, Format format) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_format = format;
  ensureLocked();
  g_sink->set_formatter(makeFormatter(format));
  g_host->set_level(level);
}

std::shared_ptr<spdlog::logger> makeLogger(const std::string& name) {
  std::lock_guard<std::mutex> lock(g_mutex);
  ensureLocked();
  auto logger = std::make_shared<spdlog::logger>(name, g_sink);
  logger->set_level(g_host->level());
  logger->flush_on(spdlog::level::warn);
  return logger;
}

spdlog::logger& host() {
  std::lock_guard<std::mutex> lock(g_mutex);
  ensureLocked();
  return *g_host;
}

}  // namespace evh::log
