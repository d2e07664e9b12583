// One plugin shared object: dlopen, entry symbol, ABI negotiation.
#pragma once

#include "plugin/search_path.h"

#include <evh/plugin.h>

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

namespace evh::plugin {

// Why a plugin was refused; what() names the file and the fault.
class LoadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct DlClose {
  void operator()(void* h) const noexcept;
};
using DlHandle = std::unique_ptr<void, DlClose>;

// An owned file descriptor (-1: none).
class FdHandle {
 public:
  FdHandle() = default;
  explicit FdHandle(int fd) : fd_(fd) {}
  ~FdHandle() { reset(); }
  FdHandle(FdHandle&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  FdHandle& operator=(FdHandle&& other) noexcept {
    if (this != &other) {
      reset(std::exchange(other.fd_, -1));
    }
    return *this;
  }
  void reset(int fd = -1) noexcept;
  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// Which file a path names, as far as a reload needs to tell a new build
// from the loaded one: a file replaced by a rename has another inode, one
// rewritten in place another size or modification time.
struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = -1;
  int64_t mtime_ns = 0;

  // stat(2) of `path` (following links); all zero / -1 when it fails.
  static FileId of(const std::string& path);
  bool operator==(const FileId& o) const noexcept {
    return dev == o.dev && ino == o.ino && size == o.size && mtime_ns == o.mtime_ns;
  }
  bool operator!=(const FileId& o) const noexcept { return !(*this == o); }
};

// The smallest descriptor this host accepts: every field of ABI 1.0 (which
// ends where 1.1's health callback begins: 64 bytes on LP64).
constexpr uint32_t kMinDescriptorSize = offsetof(evh_plugin_desc, health);

class CheckedFile;

class Library {
 public:
  // Checks `found` against the trust rules (plugin/trust.h: symlinks, owner,
  // modes, `sha256_pin` if not empty, the ABI note) before anything of it is
  // loaded, then loads it and validates its descriptor. Throws LoadError
  // naming the path and the fault: a trust rule (with its fix), not a shared
  // object, missing entry symbol, no descriptor, another ABI major, a newer
  // minor, a malformed descriptor.
  static std::shared_ptr<Library> open(const Found& found, const std::string& sha256_pin = "");
  // open() of a file found in its own folder, unpinned.
  static std::shared_ptr<Library> open(const std::string& path);
  // Loads a file checkTrust() passed (file.refusal empty): dlopen of its
  // real path, then the descriptor's checks.
  static std::shared_ptr<Library> load(const CheckedFile& file);

  ~Library();
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;

  const std::string& path() const noexcept { return path_; }
  // The SHA-256 of the file's bytes as checked before loading (lowercase hex).
  const std::string& sha256() const noexcept { return sha256_; }
  // The file as checked and loaded (its stat(2) then).
  const FileId& file() const noexcept { return file_; }
  // The host's zero-extended copy of the descriptor.
  const evh_plugin_desc& desc() const noexcept { return desc_; }
  std::string name() const { return desc_.name; }
  std::string version() const { return desc_.version != nullptr ? desc_.version : ""; }
  std::string description() const { return desc_.description != nullptr ? desc_.description : ""; }
  uint32_t abiMajor() const noexcept { return EVH_ABI_VERSION_MAJOR(desc_.abi_version); }
  uint32_t abiMinor() const noexcept { return EVH_ABI_VERSION_MINOR(desc_.abi_version); }
  bool blocking() const noexcept { return (desc_.flags & EVH_PLUGIN_BLOCKING) != 0; }
  // EVH_PLUGIN_OWN_IDEMPOTENCY, read from ABI 1.2 descriptors only (the bit
  // meant nothing before).
  bool ownIdempotency() const noexcept { return abiMinor() >= 2 && (desc_.flags & EVH_PLUGIN_OWN_IDEMPOTENCY) != 0; }
  // The descriptor's validate_config (ABI 1.3), or nullptr: read only from a
  // descriptor that declares 1.3 or later and whose struct_size covers it (a
  // short one, whatever it declares, has none; copyVersioned zeroed the rest).
  using ValidateConfigFn = evh_status (*)(evh_str, evh_config_error_fn, void*);
  ValidateConfigFn validateConfig() const noexcept {
    return abiMinor() >= 3 && EVH_HAS_FIELD(&desc_, evh_plugin_desc, validate_config) ? desc_.validate_config : nullptr;
  }

 private:
  Library(std::string path, std::string sha256, DlHandle handle, const evh_plugin_desc& desc);

  std::string path_;
  std::string sha256_;
  FileId file_;
  FdHandle alias_;  // a new build loaded beside an older one by "/proc/self/fd/N" (load()): closed after handle_
  DlHandle handle_;
  evh_plugin_desc desc_;
};

using LibraryPtr = std::shared_ptr<Library>;

// "1.0"
std::string abiString(uint32_t version);

}  // namespace evh::plugin
