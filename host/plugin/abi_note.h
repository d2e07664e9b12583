// The ABI note of a plugin file (evh/plugin.h's EVH_ABI_NOTE_*), read with libelf before dlopen.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace evh::plugin {

// Every "EVH" ABI note in the PT_NOTE segments of the ELF file open as `fd`,
// as EVH_ABI_MAKE_VERSION(major, minor); empty for a file without one (built
// before the note existed). One per object file that included the header, so
// usually several, all the same. Reads with pread only: no code of the file
// runs. Throws LoadError naming `path` when libelf cannot read the file as
// ELF or a note is malformed (shorter than its two words).
std::vector<uint32_t> readAbiNotes(int fd, const std::string& path);

}  // namespace evh::plugin
