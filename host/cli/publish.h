// evhctl publish: send one event (or N) to a channel the way any publisher would: PUBLISH, or XADD to a stream.
#pragma once

#include "cli/command.h"

namespace evh::cli {

// Adds `publish [--config FILE] [--stream] ... [--file FILE | --payload JSON
// | -]` to `app`; when given, sets `chosen` to run it. A message given as `-`
// (or by no option at all, from a pipe) is read from stdin.
void addPublish(CLI::App& app, Command& chosen);

}  // namespace evh::cli
