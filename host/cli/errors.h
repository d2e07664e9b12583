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

// Bad arguments: exit 2, with the usage text unless the message says it all.
class UsageError : public std::runtime_error {
 public:
  explicit UsageError(const std::string& msg, bool show_usage = true)
      : std::runtime_error(msg), show_usage_(show_usage) {}
  bool showUsage() const noexcept { return show_usage_; }

 private:
  bool show_usage_;
};

}  // namespace evh::cli
