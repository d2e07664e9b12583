// evhctl publish: send one event (or N) to a channel the way any publisher would: PUBLISH, or XADD to a stream.
#pragma once

#include <string>
#include <vector>

namespace evh::cli {

// The `evhctl publish` part of evhctl's usage text.
extern const char* const kPublishUsage;

// Runs `evhctl publish ARGS...` (ARGS: what follows "publish"); a message
// given as `-` (or by no option at all, from a pipe) is read from stdin.
// Returns the exit code: 0 done, 1 failed (the reason on stderr), 2 bad
// arguments.
int runPublish(const std::vector<std::string>& args);

}  // namespace evh::cli
