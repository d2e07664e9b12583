// Spawning evhost for integration tests and reading what it logs.
#include "support/evhost_process.h"
#include "support/tested_binaries.h"

#include "support/redis_server.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace evh::test {
namespace {

pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::string& out_path,
            const std::string& workdir = "") {
  pid_t pid = fork();
  if (pid < 0) {
    throw std::runtime_error("fork failed");
  }
  if (pid == 0) {
    int fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    for (const auto& e : env) {
      putenv(const_cast<char*>(e.c_str()));
    }
    if (!workdir.empty() && chdir(workdir.c_str()) != 0) {
      _exit(126);
    }
    std::vector<char*> args;
    for (const auto& a : argv) {
      args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

int decodeStatus(int status) {
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status);
  }
  return 128 + WTERMSIG(status);
}

}  // namespace

EvhostProcess::EvhostProcess(const std::string& yaml, std::vector<std::string> extra_args,
                             std::vector<std::string> env) {
  char tmpl[] = "/tmp/evh-host-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    throw std::runtime_error("mkdtemp failed");
  }
  dir_ = tmpl;
  config_path_ = dir_ + "/evhost.yaml";
  log_path_ = dir_ + "/evhost.log";
  std::ofstream(config_path_) << yaml;
  std::vector<std::string> argv = {evhostBin(), "--config", config_path_, "--plugin-dir", testPluginDir()};
  const bool ops_given = std::regex_search(yaml, std::regex("(^|\n)ops:")) ||
                         std::find(extra_args.begin(), extra_args.end(), "--ops-listen") != extra_args.end();
  if (!ops_given) {
    argv.insert(argv.end(), {"--ops-listen", "127.0.0.1:0"});
  }
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  // Relative files evhost writes (the dead-letter fallback file by default)
  // land in the test's own folder.
  pid_ = spawn(argv, env, log_path_, dir_);
}

EvhostProcess::~EvhostProcess() {
  // Every test ends with a graceful stop, so that each one also checks a
  // clean shutdown -- under the sanitizers in the build-asan tree.
  if (running()) {
    ::kill(pid_, SIGTERM);
    auto code = waitExit(std::chrono::seconds(30));
    if (!code) {
      ADD_FAILURE() << "evhost did not stop within 30 s of SIGTERM\n" << log();
      ::kill(pid_, SIGKILL);
      waitExit(std::chrono::seconds(10));
    } else {
      EXPECT_EQ(*code, 0) << "evhost exit code after SIGTERM\n" << log();
    }
  }
  std::string text = log();
  for (const char* marker : {"AddressSanitizer", "LeakSanitizer", "runtime error:"}) {
    EXPECT_EQ(text.find(marker), std::string::npos) << "sanitizer report in evhost's log:\n" << text;
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string EvhostProcess::log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t EvhostProcess::countInLog(const std::string& needle) const {
  std::string text = log();
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + needle.size())) {
    ++n;
  }
  return n;
}

bool EvhostProcess::waitForLog(const std::string& needle, std::chrono::milliseconds timeout) const {
  return eventually([&] { return log().find(needle) != std::string::npos; }, timeout);
}

void EvhostProcess::signal(int sig) {
  if (pid_ > 0 && !exit_code_) {
    ::kill(pid_, sig);
  }
}

bool EvhostProcess::running() {
  if (exit_code_ || pid_ <= 0) {
    return false;
  }
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    exit_code_ = decodeStatus(status);
    return false;
  }
  return true;
}

std::optional<int> EvhostProcess::waitExit(std::chrono::milliseconds timeout) {
  eventually([&] { return !running(); }, timeout);
  return exit_code_;
}

std::pair<int, std::string> runCommand(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  char tmpl[] = "/tmp/evh-cmd-XXXXXX";
  int fd = mkstemp(tmpl);
  if (fd < 0) {
    throw std::runtime_error("mkstemp failed");
  }
  close(fd);
  pid_t pid = spawn(argv, env, tmpl);
  int status = 0;
  waitpid(pid, &status, 0);
  std::ifstream in(tmpl);
  std::stringstream ss;
  ss << in.rdbuf();
  unlink(tmpl);
  return {decodeStatus(status), ss.str()};
}

}  // namespace evh::test
