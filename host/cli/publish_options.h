// evhctl publish's command line, as parsed: shared by the files of evhctl publish (publish.cpp: arguments, channel,
// the command; publish_message.cpp: the messages; publish_send.cpp: sending and the report).
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace evh::cli::publish {

enum class Source { None, File, Payload, Stdin };

struct Options {
  std::string config;
  bool stream = false;
  std::optional<std::string> channel;
  std::optional<std::string> type;
  std::optional<std::string> id;
  std::optional<std::string> correlation_id;
  size_t count = 1;
  Source source = Source::None;
  std::string source_arg;           // the file name, or the --payload JSON
  std::optional<std::string> sign;  // --sign KEYFILE: a whsec_ key to sign each message with
};

}  // namespace evh::cli::publish
