// Reading a secret from a file: the permission check is made on the opened
// descriptor (fstat), so the file checked is the file read.
#include "config/secret_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace evh::config {
namespace {

constexpr off_t kMaxSecretBytes = 64 * 1024;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const noexcept { return fd_; }
  void reset(int fd) noexcept {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    fd_ = fd;
  }

 private:
  int fd_;
};

std::string octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// nullopt when the opened file may hold a secret.
std::optional<std::string> refusal(const std::string& path, const struct stat& st) {
  if (!S_ISREG(st.st_mode)) {
    return path + " is not a regular file";
  }
  if ((st.st_mode & 077) != 0) {
    return path + " is accessible by group or others (mode " + octal(st.st_mode) +
           "); a secret file must be private to its owner: chmod 600 " + path;
  }
  if (st.st_size == 0) {
    return path + " is empty";
  }
  if (st.st_size > kMaxSecretBytes) {
    return path + " is larger than 64 KiB: not a secret file";
  }
  return std::nullopt;
}

std::string errnoText(const std::string& path, int err) { return "cannot read " + path + ": " + std::strerror(err); }

// Opens `path` and checks the opened file. nullopt: `fd` and `st` are set.
std::optional<std::string> openChecked(const std::string& path, Fd& fd, struct stat& st) {
  // O_NONBLOCK: a FIFO put in the secret's place must not hang start-up
  // (it is refused as not a regular file).
  fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) {
    return errnoText(path, errno);
  }
  if (::fstat(fd.get(), &st) != 0) {
    return errnoText(path, errno);
  }
  return refusal(path, st);
}

}  // namespace

std::optional<SecretFileError> checkSecretFile(const std::string& path) {
  Fd fd(-1);
  struct stat st {};
  if (auto why = openChecked(path, fd, st)) {
    return SecretFileError{*why};
  }
  return std::nullopt;
}

SecretRead readSecretFile(const std::string& path) {
  Fd fd(-1);
  struct stat st {};
  if (auto why = openChecked(path, fd, st)) {
    return {std::nullopt, *why};
  }
  std::string content(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < content.size()) {
    const ssize_t n = ::pread(fd.get(), &content[got], content.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return {std::nullopt, errnoText(path, errno)};
    }
    if (n == 0) {
      break;  // the file shrank meanwhile
    }
    got += static_cast<size_t>(n);
  }
  content.resize(got);
  if (!content.empty() && content.back() == '\n') {
    content.pop_back();
    if (!content.empty() && content.back() == '\r') {
      content.pop_back();
    }
  }
  if (content.empty()) {
    return {std::nullopt, path + " holds no secret (only a line break)"};
  }
  return {std::move(content), {}};
}

}  // namespace evh::config
