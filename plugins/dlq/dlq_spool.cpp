// dlq_spool: the spool file's lines and its file I/O (see dlq_spool.h):
// POSIX calls with every write fsync'd, and the folder fsync'd when a name
// in it is created or replaced.
#include "dlq_spool.h"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <system_error>

namespace dlq {

using Json = nlohmann::json;

std::string errnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

std::string dirOf(const std::string& file) {
  std::filesystem::path p(file);
  return p.has_parent_path() ? p.parent_path().string() : std::string(".");
}

// ---- entries and spool lines --------------------------------------------------

bool isEntry(std::string_view text) {
  size_t first = text.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && text[first] == '{' && Json::accept(text.begin(), text.end());
}

std::string spoolLine(std::string_view entry) {
  if (entry.find_first_of("\r\n") == std::string_view::npos) {
    return std::string(entry);
  }
  return Json(std::string(entry)).dump();
}

std::optional<std::string> entryOfLine(std::string_view line) {
  size_t first = line.find_first_not_of(" \t\r");
  if (first != std::string_view::npos && line[first] == '"') {
    Json j = Json::parse(line.begin(), line.end(), nullptr, false);
    if (j.is_string() && isEntry(j.get_ref<const std::string&>())) {
      return j.get<std::string>();
    }
    return std::nullopt;
  }
  if (!isEntry(line)) {
    return std::nullopt;
  }
  return std::string(line);
}

std::string preview(std::string_view s) {
  constexpr size_t kMax = 200;
  return s.size() <= kMax ? std::string(s) : std::string(s.substr(0, kMax)) + "...";
}

// ---- file I/O (the spool) -----------------------------------------------------

namespace {

class Fd {
 public:
  explicit Fd(int fd) noexcept : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const noexcept { return fd_; }

 private:
  int fd_;
};

bool writeAll(int fd, std::string_view data, std::string& error) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      error = errnoText(errno);
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool syncFd(int fd, std::string& error) {
  if (::fsync(fd) != 0) {
    error = "fsync: " + errnoText(errno);
    return false;
  }
  return true;
}

// Makes a created or renamed file's name durable too.
bool syncDir(const std::string& dir, std::string& error) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) {
    error = "open folder " + dir + ": " + errnoText(errno);
    return false;
  }
  return syncFd(fd.get(), error);
}

}  // namespace

bool appendLines(const std::string& path, const std::vector<std::string>& lines, std::string& error) {
  struct stat st {};
  bool existed = ::stat(path.c_str(), &st) == 0;
  Fd fd(::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
  if (fd.get() < 0) {
    error = "open: " + errnoText(errno);
    return false;
  }
  if (::fstat(fd.get(), &st) != 0) {
    error = "fstat: " + errnoText(errno);
    return false;
  }
  size_t size = 1;
  for (const auto& line : lines) {
    size += line.size() + 1;
  }
  std::string data;
  data.reserve(size);
  if (st.st_size > 0) {
    // A crash in the middle of an earlier append may have left a last line
    // without its newline: start a fresh line rather than glue this entry to
    // the fragment (which a flush then drops as corrupt).
    char last = '\n';
    if (::pread(fd.get(), &last, 1, st.st_size - 1) == 1 && last != '\n') {
      data.push_back('\n');
    }
  }
  for (const auto& line : lines) {
    data.append(line);
    data.push_back('\n');
  }
  if (!writeAll(fd.get(), data, error) || !syncFd(fd.get(), error)) {
    // Best effort: leave none of these entries behind, whole or in part
    // (the caller answers RETRY, so the host keeps them in its own fallback
    // file; a later flush must not push them too).
    if (::ftruncate(fd.get(), st.st_size) == 0) {
      (void)::fsync(fd.get());
    }
    return false;
  }
  if (!existed) {
    std::string dir_error;
    (void)syncDir(dirOf(path), dir_error);  // the data itself is durable; a new name is very nearly so
  }
  return true;
}

bool readAll(const std::string& path, std::string& out, std::string& error) {
  out.clear();
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) {
      return true;
    }
    error = "open: " + errnoText(errno);
    return false;
  }
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      error = "read: " + errnoText(errno);
      return false;
    }
    if (n == 0) {
      return true;
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

bool rewriteLines(const std::string& path, const std::vector<std::string_view>& lines, std::string& error) {
  std::string tmp = path + ".tmp";
  {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (fd.get() < 0) {
      error = "open " + tmp + ": " + errnoText(errno);
      return false;
    }
    std::string data;
    for (auto l : lines) {
      data.append(l);
      data.push_back('\n');
    }
    if (!writeAll(fd.get(), data, error) || !syncFd(fd.get(), error)) {
      ::unlink(tmp.c_str());
      return false;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    error = "rename " + tmp + ": " + errnoText(errno);
    ::unlink(tmp.c_str());
    return false;
  }
  return syncDir(dirOf(path), error);
}

bool truncateFile(const std::string& path, std::string& error) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) {
      return true;
    }
    error = "truncate: " + errnoText(errno);
    return false;
  }
  return syncFd(fd.get(), error);
}

bool fileHasData(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

std::vector<std::string_view> splitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (line.find_first_not_of(" \t\r") != std::string_view::npos) {
      lines.push_back(line);
    }
    if (nl == std::string_view::npos) {
      break;
    }
    text.remove_prefix(nl + 1);
  }
  return lines;
}

}  // namespace dlq
