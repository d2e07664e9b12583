// Which file's code a loaded object runs: the mapping of an address, as
// /proc/self/maps tells it (device and inode).
#pragma once

#include <sys/types.h>

namespace evh::plugin {

// Whether the mapping that holds `addr` is of the file (dev, ino). False
// when no mapping holds it or /proc/self/maps cannot be read. Reads a
// file: the loop does this only where it loads plugins (dlopen's I/O).
bool mapsFile(const void* addr, dev_t dev, ino_t ino);

}  // namespace evh::plugin
