// How evhctl's commands end badly: a failure (exit 1) or bad arguments (exit 2).
#pragma once

#include <stdexcept>
#include <string>

namespace evh::cli {

// A failure the operator must see: evhctl prints it and exits 1.
class Failure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Arguments that turn out wrong only once the command runs (no channel of
// that transport in the config, --type for a whole envelope): the command
// prints it and exits 2. What the command line alone shows wrong is CLI11's
// (cli/command_line.h).
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace evh::cli
