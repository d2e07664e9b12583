// The real evhost binary as a child process, with its log captured.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace evh::test {

class EvhostProcess {
 public:
  // Writes `yaml` to a temporary config file and starts evhost on it with
  // --plugin-dir <test plugins>, plus `extra_args`, in that temporary folder
  // as its working directory. Environment variables in `env` ("NAME=value")
  // are added. Unless `yaml` has a top-level `ops:` section or `extra_args`
  // an --ops-listen, the ops listener takes any free port (--ops-listen
  // 127.0.0.1:0) rather than the fixed default, which tests running side by
  // side would fight over; opsUrl(*this) (support/http_client.h) finds it.
  explicit EvhostProcess(const std::string& yaml, std::vector<std::string> extra_args = {},
                         std::vector<std::string> env = {});
  ~EvhostProcess();
  EvhostProcess(const EvhostProcess&) = delete;
  EvhostProcess& operator=(const EvhostProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& dir() const { return dir_; }
  const std::string& configPath() const { return config_path_; }
  std::string log() const;
  size_t countInLog(const std::string& needle) const;
  // Waits until the log contains needle (a hang guard, default 20 s).
  bool waitForLog(const std::string& needle, std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;
  void signal(int sig);
  // Waits for exit; nullopt on timeout. Returns the exit code (128+signal
  // when killed by a signal).
  std::optional<int> waitExit(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  bool running();

 private:
  std::string dir_;
  std::string config_path_;
  std::string log_path_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// Runs a command to completion, returning {exit code, stdout+stderr};
// `env` entries ("NAME=value") are added to its environment.
std::pair<int, std::string> runCommand(const std::vector<std::string>& argv, const std::vector<std::string>& env = {});

}  // namespace evh::test
