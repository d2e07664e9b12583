// evhctl dlq: list, show, remove, replay and purge the dead-letter entries the dlq plugin keeps in Redis.
#pragma once

#include "cli/command.h"

namespace evh::cli {

// Adds `dlq [--config FILE] list|show|remove|replay|purge ...` to `app`;
// when given, sets `chosen` to run it.
void addDlq(CLI::App& app, Command& chosen);

}  // namespace evh::cli
