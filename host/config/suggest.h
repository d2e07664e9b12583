// Did-you-mean suggestions for misspelt keys and names.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace evh::config {

// The candidate closest to `word` when it is close enough to be a likely typo
// (case-insensitive edit distance, with a swap of neighbours counting as one
// edit; at most one edit for short words, up to three for long ones), or
// nullopt. Ties go to the earlier candidate.
std::optional<std::string> closestMatch(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace evh::config
