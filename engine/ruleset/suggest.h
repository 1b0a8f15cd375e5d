// "Did you mean" suggestions for misspelt keys, names and values.
#pragma once

#include <string>
#include <vector>

namespace cw {

// Levenshtein distance (insertions, deletions, substitutions).
size_t EditDistance(const std::string& a, const std::string& b);

// " (did you mean \"x\"?)" for the closest candidate within a small distance of `word`, else "".
std::string DidYouMean(const std::string& word, const std::vector<std::string>& candidates);

// "a, b, c" — for messages listing what is accepted.
std::string JoinNames(const std::vector<std::string>& names);

}  // namespace cw
