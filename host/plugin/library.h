// One plugin shared object: dlopen, entry symbol, ABI negotiation.
#pragma once

#include "plugin/search_path.h"

#include <evh/plugin.h>

#include <cstddef>

#include <memory>
#include <stdexcept>
#include <string>

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
  DlHandle handle_;
  evh_plugin_desc desc_;
};

using LibraryPtr = std::shared_ptr<Library>;

// "1.0"
std::string abiString(uint32_t version);

}  // namespace evh::plugin
