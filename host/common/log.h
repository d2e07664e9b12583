// The one log facade: spdlog loggers in text or JSON-lines format.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <spdlog/formatter.h>
#include <spdlog/spdlog.h>

namespace evh::log {

enum class Format { Text, Json };

// Parses "trace".."critical", "off"; nullopt for anything else.
std::optional<spdlog::level::level_enum> parseLevel(std::string_view name);

// The line format of every logger: text ("<time> <level> [<logger>] <message>",
// control characters in the message escaped as log_escape.h says) or JSON
// lines. Exposed for tests; setup() installs it.
std::unique_ptr<spdlog::formatter> makeFormatter(Format format);

// Configures the host logger ("evhost", to stderr) and the format of every
// logger. Call it at start-up, before makeLogger: loggers made earlier keep
// the level they were made with.
void setup(spdlog::level::level_enum level, Format format);

// A logger tagged `name` sharing the default logger's sinks, level and format.
std::shared_ptr<spdlog::logger> makeLogger(const std::string& name);

// The host's own logger.
spdlog::logger& host();

}  // namespace evh::log
