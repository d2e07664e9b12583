// ${VAR} / ${VAR:-default} / $$ expansion of configuration values.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace evh::config {

// The outcome of expanding one scalar. `errors` is empty on success; each
// entry is a message without location (the caller prefixes file:line: key).
struct Expansion {
  std::string value;
  std::vector<std::string> errors;
  // Each non-empty value that came from the environment (defaults written
  // in the file excluded): what may be a secret in `value`.
  std::vector<std::string> from_environment;
};

// Whether an error message may quote the text being expanded: not when it is
// a secret (a password, a URL that may hold one).
enum class Quoting { Allowed, Never };

// Expands every variable reference in `text`:
//   ${NAME}          the value of NAME; an error when NAME is unset
//   ${NAME:-default} the value of NAME, or `default` when NAME is unset or
//                    empty (shell semantics); `default` may itself contain
//                    references and may be empty
//   $$               a literal '$'
// NAME matches [A-Za-z_][A-Za-z0-9_]*. A '$' followed by anything else is kept
// as is, so passwords with a lone '$' need no escaping. A malformed "${" (no
// closing brace, bad name, stray character, defaults nested more than 16
// deep) is an error, and stops the scan; its message quotes the reference
// unless `quoting` is Never.
Expansion expandVariables(std::string_view text, const EnvLookup& env, Quoting quoting = Quoting::Allowed);

}  // namespace evh::config
