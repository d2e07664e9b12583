// evhctl status: a running evhost's GET /status, as tables.
#pragma once

#include "cli/command.h"

namespace evh::cli {

// Adds `status [--config FILE] [--url URL] [--json]` to `app`; when given,
// sets `chosen` to run it.
void addStatus(CLI::App& app, Command& chosen);

}  // namespace evh::cli
