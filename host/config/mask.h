// Masking values that came from the environment in text shown beyond
// evhost's console (GET /status, the log, a plugin's config problems): a
// ${VAR} may hold a secret, and an error that quotes the value it gave
// (gotValue) must not carry it further.
#pragma once

#include <string>
#include <vector>

namespace evh::config {

// `text` with every one of `values` replaced by "***": anywhere for values
// of 4 bytes or more, as a whole word only for shorter ones (a "1" from
// ${RETRIES} must not mask every digit), also in its JSON-escaped form.
// Longest first: a value that contains another is masked whole.
std::string maskValues(std::string text, const std::vector<std::string>& values);

}  // namespace evh::config
