// SHA-256 as lowercase hex (OpenSSL's libcrypto): the config file's digest
// (/status), oversized messages' (dead-letter entries). In evh_config, the
// lowest library that needs it.
#pragma once

#include <string>
#include <string_view>

namespace evh {

// "" only if libcrypto fails.
std::string sha256Hex(std::string_view bytes);

}  // namespace evh
