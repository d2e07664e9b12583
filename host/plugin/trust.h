// Plugin trust: what is checked of a plugin file before dlopen -- symlinks, owner, modes, the sha256 pin, the ABI
// note -- on one open descriptor, so that the checks, the digest and the load concern the same file.
#pragma once

#include "plugin/search_path.h"

#include <sys/stat.h>

#include <string>
#include <vector>

namespace evh::plugin {

// One rule's verdict, for `evhctl plugin inspect`.
struct RuleVerdict {
  std::string rule;  // "symlink", "open", "owner", "mode", "folder", "elf", "sha256", "abi-note"
  bool passed = false;
  std::string text;  // what was found ("root-owned", "0644", ...) or the refusal
};

// A plugin file that passed (or failed) the trust checks, still open.
class CheckedFile {
 public:
  CheckedFile() = default;
  ~CheckedFile();
  CheckedFile(CheckedFile&& other) noexcept;
  CheckedFile& operator=(CheckedFile&&) = delete;
  CheckedFile(const CheckedFile&) = delete;
  CheckedFile& operator=(const CheckedFile&) = delete;

  std::string path;                 // as found (a symlink, maybe)
  std::string real_path;            // fully resolved: what is opened, hashed and dlopened
  int fd = -1;                      // O_RDONLY | O_CLOEXEC, open on real_path
  struct stat st {};                // fstat(fd)
  std::string sha256;               // of the file's bytes as read through fd; "" when refused before
  std::vector<uint32_t> abi_notes;  // plugin/abi_note.h; empty: no note (checked after dlopen)
  std::vector<RuleVerdict> rules;   // in the order checked; the last failed if refused
  std::string refusal;              // empty: trusted; else "<path>: refused by plugin trust rule ...: ...; fix"
};

// The trust rule on a plugin path as written in the config ("dotdot"):
// throws LoadError when it has a ".." component, which may lead out of the
// folder it seems to name. Checked before the path is resolved (normalising
// would hide the ".."). A path given to `evhctl plugin inspect` is not
// configured and may use "..".
void checkConfiguredPath(const std::string& written);

// Runs every trust rule on `found`, stopping at the first refusal (named in
// `refusal` and as the last rule). `sha256_pin` (64 lowercase hex digits, or
// empty for none) is the configured digest. Never throws for the file's
// sake. Reads the file (hashing it): run it where file I/O is allowed.
CheckedFile checkTrust(const Found& found, const std::string& sha256_pin);

// The refusal for a library already loaded under another instance whose
// bytes (`actual`) do not match this instance's pin; "" when they do.
std::string pinMismatch(const std::string& path, const std::string& pin, const std::string& actual);

}  // namespace evh::plugin
