// Which file's code a loaded object runs: the mapping of an address, as
// /proc/self/maps tells it (device and inode).
#pragma once

#include <sys/types.h>

namespace evh::plugin {

enum class Mapped { Yes, No, Unknown };

// Whether the mapping that holds `addr` is of the file (dev, ino); Unknown
// when /proc/self/maps cannot be read (no /proc) or no mapping holds it.
// Reads a file: the loop does this only where it loads plugins (dlopen's
// I/O).
Mapped mapsFile(const void* addr, dev_t dev, ino_t ino);

}  // namespace evh::plugin
