// Secrets kept in files: a Redis password (`redis.password_file`), a TLS
// private key, a signing key. A secret file must be private to its owner: a
// file any other user may read (or write) is refused before its content is
// looked at, with the chmod that fixes it.
#pragma once

#include <optional>
#include <string>

namespace evh::config {

// Symlinks are followed (Kubernetes mounts secrets through them): the checks
// apply to the file they lead to.

struct SecretFileError {
  std::string why;  // names the file and the rule; never any of its content
};

// Refuses a file that is not a regular file, has any group or other
// permission bit (mode & 077), is empty or larger than 64 KiB.
// Returns nullopt when `path` may hold a secret, else why not.
std::optional<SecretFileError> checkSecretFile(const std::string& path);

// checkSecretFile, then the content without one trailing "\n" or "\r\n"
// (an editor's last newline is not part of a password). `why` names the file
// and the rule, never any of the content. THREAD: any; blocks on file I/O,
// so never on the event loop.
struct SecretRead {
  std::optional<std::string> value;  // set on success
  std::string why;                   // set on failure
};
SecretRead readSecretFile(const std::string& path);

}  // namespace evh::config
