// dlopen, the entry symbol and ABI negotiation; every refusal names the file.
#include "plugin/library.h"

#include "plugin/mapped_file.h"
#include "plugin/trust.h"
#include "plugin/versioned.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>

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
  return open(Found{path, std::filesystem::path(path).parent_path().string()});
}

std::shared_ptr<Library> Library::open(const Found& found, const std::string& sha256_pin) {
  CheckedFile file = checkTrust(found, sha256_pin);
  if (!file.refusal.empty()) {
    throw LoadError(file.refusal);
  }
  return load(file);
}

std::shared_ptr<Library> Library::load(const CheckedFile& file) {
  const std::string& path = file.path;
  if (!file.refusal.empty() || file.fd < 0) {
    throw LoadError(file.refusal.empty() ? path + ": not checked" : file.refusal);
  }
  dlerror();
  // dlopen gets the real path the checks resolved, not "/proc/self/fd/N" of
  // the checked descriptor, although that would close the window between
  // check and load. With glibc 2.36: (1) the link map's name is then
  // "/proc/self/fd/N", which is what backtraces in the crash file, dladdr
  // and a debugger reading a core name -- not the plugin; (2) glibc finds an
  // already loaded object by that name before opening anything, so once N is
  // closed and reused for another plugin while the first object stays mapped
  // (RTLD_NODELETE, or a C++ plugin's STB_GNU_UNIQUE symbols), dlopen returns
  // the first plugin for the second. (The same file twice through two
  // descriptors is still one object: glibc compares device and inode.) The
  // window is closed another way: only root or evhost's user may write to the
  // folder (the trust rules), and the path is checked to name the same file
  // after the load.
  DlHandle handle(dlopen(file.real_path.c_str(), RTLD_NOW | RTLD_LOCAL));
  if (!handle) {
    const char* err = dlerror();
    throw LoadError(path + ": cannot load shared object: " + (err != nullptr ? err : "unknown dlopen error"));
  }
  struct stat now {};
  if (::stat(file.real_path.c_str(), &now) != 0 || now.st_dev != file.st.st_dev || now.st_ino != file.st.st_ino) {
    throw LoadError(path +
                    ": refused: the file was replaced while it was being loaded (its checks and digest were "
                    "of another file); load again once it is in place");
  }
  dlerror();
  void* sym = dlsym(handle.get(), EVH_PLUGIN_ENTRY_SYMBOL);
  FdHandle alias;
  // (Without /proc to tell, the object is taken as the file's, as before
  // reloads could load a new build.)
  if (sym != nullptr && mapsFile(sym, file.st.st_dev, file.st.st_ino) == Mapped::No) {
    // glibc finds an object already loaded under the same name before it
    // opens anything: an older build of this path, replaced since (a new
    // build renamed over it, loaded by a reload while the old one still
    // runs). The checked file is then loaded through its descriptor, kept
    // open while the library is loaded so that its "/proc/self/fd/N" names
    // no other file meanwhile (the hazard in the comment above); backtraces
    // name that build "/proc/self/fd/N".
    alias.reset(fcntl(file.fd, F_DUPFD_CLOEXEC, 0));
    if (!alias) {
      throw LoadError(path + ": cannot load the new build while the old one is loaded: dup: " + std::strerror(errno));
    }
    const std::string by_fd = "/proc/self/fd/" + std::to_string(alias.get());
    handle.reset(dlopen(by_fd.c_str(), RTLD_NOW | RTLD_LOCAL));
    if (!handle) {
      const char* err = dlerror();
      throw LoadError(path + ": cannot load shared object: " + (err != nullptr ? err : "unknown dlopen error"));
    }
    dlerror();
    sym = dlsym(handle.get(), EVH_PLUGIN_ENTRY_SYMBOL);
    if (sym != nullptr && mapsFile(sym, file.st.st_dev, file.st.st_ino) != Mapped::Yes) {
      throw LoadError(path +
                      ": refused: the dynamic loader keeps returning another build of this file (still loaded); "
                      "restart evhost to load the new one");
    }
  }
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
  auto lib = std::shared_ptr<Library>(new Library(path, file.sha256, std::move(handle), desc));
  lib->file_ = FileId{file.st.st_dev, file.st.st_ino, file.st.st_size,
                      static_cast<int64_t>(file.st.st_mtim.tv_sec) * 1000000000 + file.st.st_mtim.tv_nsec};
  lib->alias_ = std::move(alias);
  return lib;
}

Library::Library(std::string path, std::string sha256, DlHandle handle, const evh_plugin_desc& desc)
    : path_(std::move(path)), sha256_(std::move(sha256)), handle_(std::move(handle)), desc_(desc) {}

void FdHandle::reset(int fd) noexcept {
  if (fd_ >= 0) {
    ::close(fd_);
  }
  fd_ = fd;
}

FileId FileId::of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return FileId{};
  }
  return FileId{st.st_dev, st.st_ino, st.st_size,
                static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

Library::~Library() = default;

}  // namespace evh::plugin
