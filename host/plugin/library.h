// One plugin shared object: dlopen, entry symbol, ABI negotiation.
#pragma once

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

class Library {
 public:
  // Loads `path` (an existing file) and validates its descriptor. Throws
  // LoadError naming the path and the fault: not a shared object, missing
  // entry symbol, no descriptor, another ABI major, a newer minor, a
  // malformed descriptor.
  static std::shared_ptr<Library> open(const std::string& path);

  ~Library();
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;

  const std::string& path() const noexcept { return path_; }
  // The host's zero-extended copy of the descriptor.
  const evh_plugin_desc& desc() const noexcept { return desc_; }
  std::string name() const { return desc_.name; }
  std::string version() const { return desc_.version != nullptr ? desc_.version : ""; }
  std::string description() const { return desc_.description != nullptr ? desc_.description : ""; }
  uint32_t abiMajor() const noexcept { return EVH_ABI_VERSION_MAJOR(desc_.abi_version); }
  uint32_t abiMinor() const noexcept { return EVH_ABI_VERSION_MINOR(desc_.abi_version); }
  bool blocking() const noexcept { return (desc_.flags & EVH_PLUGIN_BLOCKING) != 0; }

 private:
  Library(std::string path, DlHandle handle, const evh_plugin_desc& desc);

  std::string path_;
  DlHandle handle_;
  evh_plugin_desc desc_;
};

using LibraryPtr = std::shared_ptr<Library>;

// "1.0"
std::string abiString(uint32_t version);

}  // namespace evh::plugin
