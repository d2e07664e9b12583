// Reading evh/plugin.h's ABI note with libelf: the program headers' PT_NOTE segments, which the dynamic
// loader maps too (section headers may be stripped or lie; the segments are what gets loaded).
#include "plugin/abi_note.h"

#include "plugin/library.h"

#include <evh/plugin.h>
#include <gelf.h>
#include <libelf.h>

#include <cstring>
#include <memory>

namespace evh::plugin {
namespace {

struct ElfEnd {
  void operator()(Elf* e) const noexcept { elf_end(e); }
};

LoadError malformed(const std::string& path, const std::string& what) {
  return LoadError(path + ": malformed ELF file: " + what);
}

}  // namespace

std::vector<uint32_t> readAbiNotes(int fd, const std::string& path) {
  // elf_version() must be called before any other libelf call; it only
  // records the version, so calling it each time is cheap and thread-safe.
  if (elf_version(EV_CURRENT) == EV_NONE) {
    throw LoadError(path + ": cannot read ELF notes: libelf: " + elf_errmsg(-1));
  }
  std::unique_ptr<Elf, ElfEnd> elf(elf_begin(fd, ELF_C_READ, nullptr));
  if (!elf || elf_kind(elf.get()) != ELF_K_ELF) {
    throw malformed(path, elf ? "not an ELF object" : elf_errmsg(-1));
  }
  size_t phnum = 0;
  if (elf_getphdrnum(elf.get(), &phnum) != 0) {
    throw malformed(path, std::string("program headers: ") + elf_errmsg(-1));
  }
  std::vector<uint32_t> versions;
  for (size_t i = 0; i < phnum; ++i) {
    GElf_Phdr phdr;
    if (gelf_getphdr(elf.get(), static_cast<int>(i), &phdr) == nullptr) {
      throw malformed(path, std::string("program header: ") + elf_errmsg(-1));
    }
    if (phdr.p_type != PT_NOTE || phdr.p_filesz == 0) {
      continue;
    }
    // An 8-aligned note segment (.note.gnu.property) uses 8-byte padding.
    Elf_Data* data = elf_getdata_rawchunk(elf.get(), static_cast<int64_t>(phdr.p_offset), phdr.p_filesz,
                                          phdr.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR);
    if (data == nullptr) {
      throw malformed(path, std::string("note segment: ") + elf_errmsg(-1));
    }
    const auto* bytes = static_cast<const char*>(data->d_buf);
    size_t offset = 0;
    GElf_Nhdr nhdr;
    size_t name_at = 0;
    size_t desc_at = 0;
    while (offset < data->d_size && (offset = gelf_getnote(data, offset, &nhdr, &name_at, &desc_at)) > 0) {
      if (nhdr.n_type != EVH_ABI_NOTE_TYPE || nhdr.n_namesz != sizeof(EVH_ABI_NOTE_NAME) ||
          std::memcmp(bytes + name_at, EVH_ABI_NOTE_NAME, sizeof(EVH_ABI_NOTE_NAME)) != 0) {
        continue;  // someone else's note (GNU build id, ABI tag, ...)
      }
      if (nhdr.n_descsz < 8) {
        throw malformed(path, "the EVH ABI note holds " + std::to_string(nhdr.n_descsz) + " bytes, not 8");
      }
      // The two words are in the file's byte order; a plugin of the other
      // byte order would not load here anyway (dlopen refuses it).
      uint32_t words[2];
      std::memcpy(words, bytes + desc_at, sizeof(words));
      if (words[0] > 0xFFFFu || words[1] > 0xFFFFu) {
        throw malformed(path, "the EVH ABI note says " + std::to_string(words[0]) + "." + std::to_string(words[1]) +
                                  " (each part is at most 65535)");
      }
      versions.push_back(EVH_ABI_MAKE_VERSION(words[0], words[1]));
    }
  }
  return versions;
}

}  // namespace evh::plugin
