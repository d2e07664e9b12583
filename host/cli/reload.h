// evhctl reload: asks a running evhost to reload its configuration (POST
// /reload of its ops listener) and says what came of it.
#pragma once

#include "cli/command.h"

namespace evh::cli {

// Adds `reload [--config FILE] [--url URL] [--token-file FILE]` to `app`;
// when given, sets `chosen` to run it.
void addReload(CLI::App& app, Command& chosen);

}  // namespace evh::cli
