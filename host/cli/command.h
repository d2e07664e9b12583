// How an evhctl command joins the command line: it adds its subcommand to evhctl's CLI11 app, and once its
// arguments are parsed, says what to run.
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace evh::cli {

// The command the command line chose, ready to run: returns the exit status
// (0 done, 1 failed with the reason on stderr, 2 bad arguments).
using Command = std::function<int()>;

}  // namespace evh::cli
