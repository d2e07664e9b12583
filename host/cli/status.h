// evhctl status: a running evhost's GET /status, as tables.
#pragma once

#include <string>
#include <vector>

namespace evh::cli {

extern const char* const kStatusUsage;

// args: what follows "status". Returns the exit status (0, 1 failed, 2 bad
// arguments).
int runStatus(const std::vector<std::string>& args);

}  // namespace evh::cli
