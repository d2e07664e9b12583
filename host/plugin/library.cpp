// dlopen, the entry symbol and ABI negotiation; every refusal names the file.
#include "plugin/library.h"

#include "plugin/versioned.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

namespace evh::plugin {

void DlClose::operator()(void* h) const noexcept {
  if (h != nullptr) {
    dlclose(h);
  }
}

std::string abiString(uint32_t version) {
  return std::to_string(EVH_ABI_VERSION_MAJOR(version)) + "." + std::to_string(EVH_ABI_VERSION_MINOR(version));
}

namespace {

// Tells "not a shared object at all" apart from "a shared object dlopen
// could not load" (a missing dependency, say), which dlerror alone blurs.
void checkElf(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw LoadError(path + ": cannot open plugin: " + std::strerror(errno));
  }
  unsigned char magic[4] = {0, 0, 0, 0};
  ssize_t n = ::read(fd, magic, sizeof(magic));
  ::close(fd);
  if (n != 4 || magic[0] != 0x7f || magic[1] != 'E' || magic[2] != 'L' || magic[3] != 'F') {
    throw LoadError(path + ": not a shared object (no ELF header)");
  }
}

bool validName(const char* name) {
  if (name == nullptr || *name == '\0') {
    return false;
  }
  for (const char* p = name; *p != '\0'; ++p) {
    auto c = static_cast<unsigned char>(*p);
    if (!(std::islower(c) || std::isdigit(c) || c == '_' || c == '-')) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::shared_ptr<Library> Library::open(const std::string& path) {
  checkElf(path);
  dlerror();
  // dlopen searches the library path for a name without a slash; `path` is a
  // file, so it gets one.
  const std::string file = path.find('/') == std::string::npos ? "./" + path : path;
  DlHandle handle(dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL));
  if (!handle) {
    const char* err = dlerror();
    throw LoadError(path + ": cannot load shared object: " + (err != nullptr ? err : "unknown dlopen error"));
  }
  dlerror();
  void* sym = dlsym(handle.get(), EVH_PLUGIN_ENTRY_SYMBOL);
  if (sym == nullptr) {
    throw LoadError(path + ": not an evhost plugin: it does not export " EVH_PLUGIN_ENTRY_SYMBOL
                           " (build it with EVH_PLUGIN_EXPORT, see evh/plugin.h)");
  }
  evh_plugin_entry_fn entry;
  static_assert(sizeof(entry) == sizeof(sym), "function and object pointers differ in size");
  std::memcpy(&entry, &sym, sizeof(entry));

  const evh_plugin_desc* raw = entry(EVH_ABI_VERSION);
  if (raw == nullptr) {
    throw LoadError(path + ": " EVH_PLUGIN_ENTRY_SYMBOL " returned no descriptor (the plugin declined host ABI " +
                    abiString(EVH_ABI_VERSION) + ")");
  }
  // Check the version before the size: a plugin of another major may lay
  // out everything after abi_version differently. The first two fields are
  // the same in every version.
  uint32_t head[2];
  std::memcpy(head, raw, sizeof(head));
  const uint32_t plugin_abi = head[1];
  if (EVH_ABI_VERSION_MAJOR(plugin_abi) != EVH_ABI_MAJOR) {
    throw LoadError(path + ": built for plugin ABI " + abiString(plugin_abi) + ", but this evhost implements ABI " +
                    abiString(EVH_ABI_VERSION) + " (major versions differ; rebuild the plugin against this SDK)");
  }
  if (EVH_ABI_VERSION_MINOR(plugin_abi) > EVH_ABI_MINOR) {
    throw LoadError(path + ": built for plugin ABI " + abiString(plugin_abi) + ", newer than this evhost's ABI " +
                    abiString(EVH_ABI_VERSION) + " (upgrade evhost)");
  }
  if (head[0] < kMinDescriptorSize) {
    throw LoadError(path + ": malformed descriptor: struct_size " + std::to_string(head[0]) +
                    " is smaller than ABI 1.0's " + std::to_string(kMinDescriptorSize));
  }
  evh_plugin_desc desc;
  copyVersioned(raw, desc);
  if (!validName(desc.name)) {
    throw LoadError(path + ": malformed descriptor: name must match [a-z0-9_-]+");
  }
  if (desc.init == nullptr || desc.handle == nullptr) {
    throw LoadError(path + ": malformed descriptor: init and handle are required");
  }
  return std::shared_ptr<Library>(new Library(path, std::move(handle), desc));
}

Library::Library(std::string path, DlHandle handle, const evh_plugin_desc& desc)
    : path_(std::move(path)), handle_(std::move(handle)), desc_(desc) {}

Library::~Library() = default;

}  // namespace evh::plugin
