// The order in which a server's parts stop, written once. The graceful stop,
// the shutdown deadline's exit and the destructor all walk this one list;
// each step runs at most once, so whoever comes later does only what is left.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace evh::app {

class Teardown {
 public:
  enum class Mode {
    Graceful,  // everything finished or given up on: stop it all in order
    Exit       // the process is about to end while handlers still run on workers
  };
  using Fn = std::function<void(Mode)>;

  void add(std::string name, Fn fn) { steps_.push_back(Step{std::move(name), std::move(fn)}); }
  // Runs the steps not yet run, in order, up to and including `name`.
  void runThrough(const std::string& name, Mode mode);
  // Runs every step not yet run, in order.
  void runAll(Mode mode);
  bool done() const noexcept { return next_ == steps_.size(); }

 private:
  struct Step {
    std::string name;
    Fn fn;
  };
  std::vector<Step> steps_;
  size_t next_ = 0;
};

}  // namespace evh::app
