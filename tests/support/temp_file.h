// A fresh, empty file under /tmp for a test to hand to evhost (a dead-letter
// fallback file, say): never a name another test -- or an earlier run of
// this one -- may have left behind.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <string>

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

}  // namespace evh::test
