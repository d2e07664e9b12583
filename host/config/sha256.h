// SHA-256 as lowercase hex (OpenSSL's libcrypto): the config file's digest
// (/status), oversized messages' (dead-letter entries), plugin files' (trust
// checks, sha256 pins). In evh_config, the
// lowest library that needs it.
#pragma once

#include <string>
#include <string_view>

namespace evh {

// "" only if libcrypto fails.
std::string sha256Hex(std::string_view bytes);

// The digest of everything in the open file `fd`, read from offset 0 with
// pread (the file offset is left alone). "" when a read or libcrypto fails
// (errno tells which, for a read).
std::string sha256HexOfFile(int fd);

}  // namespace evh
