// Finding the file mapped at an address in /proc/self/maps.
#include "plugin/mapped_file.h"

#include <sys/sysmacros.h>

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>

namespace evh::plugin {

Mapped mapsFile(const void* addr, dev_t dev, ino_t ino) {
  struct FileClose {
    void operator()(FILE* f) const noexcept { std::fclose(f); }
  };
  std::unique_ptr<FILE, FileClose> maps(std::fopen("/proc/self/maps", "re"));
  if (!maps) {
    return Mapped::Unknown;
  }
  const auto at = reinterpret_cast<uintptr_t>(addr);
  // "start-end perms offset major:minor inode path": the path is not needed
  // (a file renamed over reads "(deleted)"), and a long one is skipped by
  // reading the rest of the line in pieces.
  char line[512];
  bool line_start = true;
  while (std::fgets(line, sizeof(line), maps.get()) != nullptr) {
    const bool starts = line_start;
    line_start = line[0] != '\0' && line[std::strlen(line) - 1] == '\n';
    if (!starts) {
      continue;
    }
    uintptr_t lo = 0;
    uintptr_t hi = 0;
    unsigned maj = 0;
    unsigned min = 0;
    uintmax_t inode = 0;
    if (std::sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %*s %*s %x:%x %ju", &lo, &hi, &maj, &min, &inode) != 5) {
      continue;
    }
    if (at >= lo && at < hi) {
      return makedev(maj, min) == dev && inode == static_cast<uintmax_t>(ino) ? Mapped::Yes : Mapped::No;
    }
  }
  return Mapped::Unknown;
}

}  // namespace evh::plugin
