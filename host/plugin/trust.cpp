// The plugin trust rules, checked on one open descriptor before dlopen; each refusal names the file, the rule and
// the fix.
#include "plugin/trust.h"

#include "config/sha256.h"
#include "plugin/abi_note.h"
#include "plugin/library.h"

#include <evh/plugin.h>
#include <fcntl.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>
#include <vector>

namespace evh::plugin {
namespace fs = std::filesystem;

CheckedFile::~CheckedFile() {
  if (fd >= 0) {
    ::close(fd);
  }
}

CheckedFile::CheckedFile(CheckedFile&& other) noexcept
    : path(std::move(other.path)),
      real_path(std::move(other.real_path)),
      fd(std::exchange(other.fd, -1)),
      st(other.st),
      sha256(std::move(other.sha256)),
      abi_notes(std::move(other.abi_notes)),
      rules(std::move(other.rules)),
      refusal(std::move(other.refusal)) {}

namespace {

std::string octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::string user(uid_t uid) {
  passwd pw{};
  passwd* found = nullptr;
  char buf[1024];
  std::string out = "uid " + std::to_string(uid);
  if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) == 0 && found != nullptr) {
    out += std::string(" (") + found->pw_name + ")";
  }
  return out;
}

bool trustedOwner(uid_t uid) { return uid == 0 || uid == geteuid(); }

constexpr mode_t kOthersWrite = S_IWGRP | S_IWOTH;

// Records a rule's verdict; a failed one also becomes the refusal.
class Rules {
 public:
  explicit Rules(CheckedFile& file) : file_(file) {}

  void pass(const char* rule, std::string text) { file_.rules.push_back(RuleVerdict{rule, true, std::move(text)}); }
  // "<path>: refused by plugin trust rule "<rule>": <what>; <fix>"
  void refuse(const char* rule, const std::string& what, const std::string& fix) {
    refuseWith(rule, file_.path + ": refused by plugin trust rule \"" + rule + "\": " + what + "; " + fix);
  }
  void refuseWith(const char* rule, std::string message) {
    file_.rules.push_back(RuleVerdict{rule, false, message});
    file_.refusal = std::move(message);
  }

 private:
  CheckedFile& file_;
};

// The owner of the file or of a folder; false (refused) when it is not trusted.
bool checkOwner(Rules& rules, const char* rule, const char* what, const std::string& name, const struct stat& st) {
  if (trustedOwner(st.st_uid)) {
    return true;
  }
  rules.refuse(rule,
               std::string(what) + " " + name + " is owned by " + user(st.st_uid) + ", not by root" +
                   (geteuid() == 0 ? "" : " or by evhost's user, " + user(geteuid())),
               "fix: chown root " + name + " (or install it as evhost's user)");
  return false;
}

// The mode of the file or of a folder; false (refused) when group or others may write.
bool checkMode(Rules& rules, const char* rule, const char* what, const std::string& name, const struct stat& st) {
  if ((st.st_mode & kOthersWrite) == 0) {
    return true;
  }
  rules.refuse(rule,
               std::string(what) + " " + name + " is writable by " +
                   ((st.st_mode & S_IWOTH) != 0 ? "others" : "its group") + " (mode " + octal(st.st_mode) + ")",
               "fix: chmod go-w " + name);
  return false;
}

bool inside(const fs::path& file, const fs::path& folder) {
  auto f = file.begin();
  for (auto d = folder.begin(); d != folder.end(); ++d, ++f) {
    if (f == file.end() || *f != *d) {
      return false;
    }
  }
  return f != file.end();
}

// The symlink rule: the fully resolved file stays inside the folder it was found in.
bool checkSymlink(Rules& rules, CheckedFile& file, const Found& found, fs::path& folder) {
  std::error_code ec;
  folder = fs::canonical(found.folder.empty() ? "." : found.folder, ec);
  fs::path real = ec ? fs::path() : fs::canonical(found.path, ec);
  if (ec) {
    rules.refuseWith("symlink", found.path + ": cannot open plugin: " + ec.message());
    return false;
  }
  file.real_path = real.string();
  const bool is_link = fs::is_symlink(fs::symlink_status(found.path, ec));
  if (!inside(real, folder)) {
    rules.refuse("symlink",
                 "it resolves to " + real.string() + ", outside the folder it was found in (" + folder.string() + ")",
                 "fix: put the file itself in " + folder.string() + " or point to it with its real path");
    return false;
  }
  rules.pass("symlink", is_link ? "a symlink to " + real.string() + ", inside " + folder.string() : "not a symlink");
  return true;
}

bool checkFileAndFolders(Rules& rules, CheckedFile& file, const fs::path& found_folder) {
  file.fd = ::open(file.real_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (file.fd < 0 || ::fstat(file.fd, &file.st) != 0) {
    rules.refuseWith("open", file.path + ": cannot open plugin: " + std::strerror(errno));
    return false;
  }
  if (!S_ISREG(file.st.st_mode)) {
    rules.refuseWith("open", file.path + ": plugin path is not a regular file");
    return false;
  }
  if (!checkOwner(rules, "owner", "the file", file.real_path, file.st)) {
    return false;
  }
  rules.pass("owner", user(file.st.st_uid));
  if (!checkMode(rules, "mode", "the file", file.real_path, file.st)) {
    return false;
  }
  rules.pass("mode", octal(file.st.st_mode));
  // The folder holding the file and, if a symlink led below the folder it
  // was found in, every folder up to that one: whoever may write to any of
  // them may replace the plugin. (The symlink rule made real_path lie below
  // found_folder, so the walk ends there.)
  std::vector<std::string> folders;
  for (fs::path f = fs::path(file.real_path).parent_path();; f = f.parent_path()) {
    folders.push_back(f.string());
    if (f == found_folder || !f.has_relative_path()) {  // the folder it was found in, or "/"
      break;
    }
  }
  std::string seen;
  for (const auto& folder : folders) {
    struct stat st {};
    int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    const bool ok = dir >= 0 && ::fstat(dir, &st) == 0;
    const int saved = errno;
    if (dir >= 0) {
      ::close(dir);
    }
    if (!ok) {
      rules.refuseWith("folder", file.path + ": cannot check the folder " + folder + ": " + std::strerror(saved));
      return false;
    }
    if (!checkOwner(rules, "folder", "the folder", folder, st) ||
        !checkMode(rules, "folder", "the folder", folder, st)) {
      return false;
    }
    seen += (seen.empty() ? "" : ", ") + folder + " " + user(st.st_uid) + " " + octal(st.st_mode);
  }
  rules.pass("folder", seen);
  return true;
}

bool checkElfAndDigest(Rules& rules, CheckedFile& file, const std::string& pin) {
  unsigned char magic[4] = {0, 0, 0, 0};
  if (::pread(file.fd, magic, sizeof(magic), 0) != 4 || magic[0] != 0x7f || magic[1] != 'E' || magic[2] != 'L' ||
      magic[3] != 'F') {
    rules.refuseWith("elf", file.path + ": not a shared object (no ELF header)");
    return false;
  }
  file.sha256 = sha256HexOfFile(file.fd);
  if (file.sha256.empty()) {
    rules.refuseWith("sha256", file.path + ": cannot read plugin to hash it: " + std::strerror(errno));
    return false;
  }
  if (std::string refusal = pinMismatch(file.path, pin, file.sha256); !refusal.empty()) {
    rules.refuseWith("sha256", refusal);
    return false;
  }
  rules.pass("sha256", pin.empty() ? "not pinned" : "matches the pin");
  return true;
}

bool checkAbiNote(Rules& rules, CheckedFile& file) {
  try {
    file.abi_notes = readAbiNotes(file.fd, file.path);
  } catch (const LoadError& e) {
    rules.refuseWith("abi-note", e.what());
    return false;
  }
  for (uint32_t v : file.abi_notes) {
    if (EVH_ABI_VERSION_MAJOR(v) != EVH_ABI_MAJOR || EVH_ABI_VERSION_MINOR(v) > EVH_ABI_MINOR) {
      const bool major = EVH_ABI_VERSION_MAJOR(v) != EVH_ABI_MAJOR;
      rules.refuse("abi-note",
                   "its ABI note says it was built for plugin ABI " + abiString(v) + ", " +
                       (major ? "but this evhost implements ABI " : "newer than this evhost's ABI ") +
                       abiString(EVH_ABI_VERSION) + " (refused without loading it)",
                   major ? "fix: rebuild the plugin against this SDK" : "fix: upgrade evhost");
      return false;
    }
  }
  rules.pass("abi-note", file.abi_notes.empty()
                             ? "none (built before ABI notes): the descriptor's version is checked after loading"
                             : "ABI " + abiString(file.abi_notes.front()));
  return true;
}

}  // namespace

void checkConfiguredPath(const std::string& written) {
  for (const auto& part : fs::path(written)) {
    if (part == "..") {
      throw LoadError(written +
                      ": refused by plugin trust rule \"dotdot\": the configured path has a \"..\" component, "
                      "which may lead out of the folder it seems to name; fix: write the path without \"..\"");
    }
  }
}

std::string pinMismatch(const std::string& path, const std::string& pin, const std::string& actual) {
  if (pin.empty() || pin == actual) {
    return "";
  }
  return path + ": refused by plugin trust rule \"sha256\": the file's SHA-256 is " + actual +
         ", but the config pins " + pin +
         "; fix: if the file was replaced on purpose, put its new digest in the plugin's sha256 key "
         "(evhctl plugin inspect prints it), else restore the pinned file";
}

CheckedFile checkTrust(const Found& found, const std::string& sha256_pin) {
  CheckedFile file;
  file.path = found.path;
  Rules rules(file);
  fs::path folder;
  if (checkSymlink(rules, file, found, folder) && checkFileAndFolders(rules, file, folder) &&
      checkElfAndDigest(rules, file, sha256_pin)) {
    checkAbiNote(rules, file);
  }
  return file;
}

}  // namespace evh::plugin
