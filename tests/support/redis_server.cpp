// Starting and stopping private redis-server processes on free ports.
#include "support/redis_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace evh::test {

uint16_t freePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) {
      close(fd);
    }
    throw std::runtime_error("cannot find a free port");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

void RedisServer::makeDir() {
  char tmpl[] = "/tmp/evh-redis-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    throw std::runtime_error("mkdtemp failed");
  }
  dir_ = tmpl;
}

RedisServer::RedisServer(std::vector<std::string> extra, std::string conf) : extra_(std::move(extra)) {
  makeDir();
  conf_path_ = dir_ + "/redis.conf";
  FILE* f = std::fopen(conf_path_.c_str(), "w");
  if (f == nullptr || std::fputs(conf.c_str(), f) < 0 || std::fclose(f) != 0) {
    throw std::runtime_error("cannot write " + conf_path_);
  }
  for (int attempt = 0; attempt < 20; ++attempt) {
    port_ = freePort();
    if (launch()) {
      return;
    }
  }
  throw std::runtime_error("could not start redis-server with " + conf_path_);
}

RedisServer::RedisServer(std::vector<std::string> extra) : extra_(std::move(extra)) {
  makeDir();
  for (int attempt = 0; attempt < 20; ++attempt) {
    port_ = freePort();
    if (launch()) {
      return;
    }
  }
  throw std::runtime_error("could not start redis-server");
}

RedisServer::RedisServer(ClusterNode, std::vector<std::string> extra) : extra_(std::move(extra)) {
  makeDir();
  for (int attempt = 0; attempt < 20; ++attempt) {
    port_ = freePort();
    do {
      bus_port_ = freePort();
    } while (bus_port_ == port_);
    if (launch()) {
      return;
    }
  }
  throw std::runtime_error("could not start a redis-server cluster node");
}

RedisServer::~RedisServer() {
  client_.reset();
  stop();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

bool RedisServer::launch() {
  std::vector<std::string> args = {"redis-server"};
  if (!conf_path_.empty()) {
    args.push_back(conf_path_);  // the file first, as redis-server wants it
  }
  args.insert(args.end(), {"--bind", "127.0.0.1", "--port", std::to_string(port_), "--dir", dir_, "--save", "",
                           "--logfile", dir_ + "/redis.log"});
  if (bus_port_ != 0) {
    // nodes.conf is relative to --dir: each node keeps its own, and finds
    // it again on restart() (its id, its epoch, the others' addresses).
    args.insert(args.end(), {"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port",
                             std::to_string(bus_port_)});
  }
  bool has_appendonly = false;
  for (const auto& a : extra_) {
    has_appendonly = has_appendonly || a == "--appendonly";
  }
  if (!has_appendonly) {
    args.insert(args.end(), {"--appendonly", "no"});
  }
  args.insert(args.end(), extra_.begin(), extra_.end());
  pid_t pid = fork();
  if (pid < 0) {
    throw std::runtime_error("fork failed");
  }
  if (pid == 0) {
    std::vector<char*> argv;
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    execvp("redis-server", argv.data());
    _exit(127);
  }
  pid_ = pid;
  for (int i = 0; i < 400; ++i) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;  // exited: port taken, most likely
    }
    RedisConn c(redisConnect("127.0.0.1", port_));
    if (c && c->err == 0) {
      ReplyPtr r(static_cast<redisReply*>(redisCommand(c.get(), "PING")));
      // With requirepass/ACL a PING may be refused, but then it is up.
      if (r) {
        return true;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
  return false;
}

void RedisServer::kill() {
  client_.reset();
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
}

void RedisServer::stop() {
  client_.reset();
  if (pid_ > 0) {
    ::kill(pid_, SIGCONT);  // in case it is frozen
    ::kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
}

void RedisServer::freeze() {
  client_.reset();
  if (pid_ > 0) {
    ::kill(pid_, SIGSTOP);
  }
}

void RedisServer::thaw() {
  if (pid_ > 0) {
    ::kill(pid_, SIGCONT);
  }
}

void RedisServer::restart() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    if (launch()) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // port in TIME_WAIT or still closing
  }
  throw std::runtime_error("could not restart redis-server on port " + std::to_string(port_));
}

RedisConn RedisServer::connect() const {
  RedisConn c(redisConnect("127.0.0.1", port_));
  if (!c || c->err != 0) {
    throw std::runtime_error("cannot connect to test redis on port " + std::to_string(port_));
  }
  return c;
}

ReplyPtr RedisServer::command(const std::vector<std::string>& argv) {
  if (!client_) {
    client_ = connect();
  }
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  for (const auto& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  ReplyPtr r(static_cast<redisReply*>(
      redisCommandArgv(client_.get(), static_cast<int>(argv.size()), ptrs.data(), lens.data())));
  if (!r) {
    client_.reset();
    throw std::runtime_error("redis command failed: connection error");
  }
  return r;
}

}  // namespace evh::test
