// evhctl plugin inspect: what evhost sees of a plugin library, or why it would refuse it.
#pragma once

#include "cli/command.h"

namespace evh::cli {

// Adds `plugin inspect PLUGIN [--plugin-dir DIR]...` to `app`; when given,
// sets `chosen` to run it.
void addPluginInspect(CLI::App& app, Command& chosen);

}  // namespace evh::cli
