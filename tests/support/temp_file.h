// Fresh, empty files and folders under /tmp for a test to hand to evhost (a
// dead-letter fallback file, a state directory): never a name another test
// -- or an earlier run of this one -- may have left behind. And reading a
// file whole.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace evh::test {

// "/tmp/<stem>-XXXXXX<suffix>", created empty. The caller removes it.
inline std::string freshTempFile(const std::string& stem, const std::string& suffix) {
  std::string path = "/tmp/" + stem + "-XXXXXX" + suffix;
  const int fd = ::mkstemps(path.data(), static_cast<int>(suffix.size()));
  if (fd >= 0) {
    ::close(fd);
  }
  return path;
}

// "/tmp/evh-XXXXXX", made empty; removed with what it holds when this goes.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/evh-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      throw std::runtime_error("mkdtemp failed");
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

// The whole file; "" when it cannot be read.
inline std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The file's whole lines: a last line without its line break is left out
// (a writer thread may be half way through it).
inline std::vector<std::string> wholeLines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line) && !in.eof();) {
    lines.push_back(line);
  }
  return lines;
}

}  // namespace evh::test
