// evhctl dlq: list, show, remove, replay and purge the dead-letter entries the dlq plugin keeps in Redis.
#pragma once

#include <string>
#include <vector>

namespace evh::cli {

// The `evhctl dlq` part of evhctl's usage text.
extern const char* const kDlqUsage;

// Runs `evhctl dlq ARGS...` (ARGS: what follows "dlq"). Returns the exit
// code: 0 done, 1 failed (the reason on stderr), 2 bad arguments.
int runDlq(const std::vector<std::string>& args);

}  // namespace evh::cli
