#include "engine/ruleset/suggest.h"

#include <algorithm>

namespace cw {

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string DidYouMean(const std::string& word, const std::vector<std::string>& candidates) {
  // About one edit per three characters (at least two: a swapped pair), or a candidate that
  // contains the word or is contained in it ("prefix" for "hf_prefix").
  const size_t limit = std::max<size_t>(2, (word.size() + 2) / 3);
  const std::string* best = nullptr;
  size_t best_distance = limit + 1;
  for (const std::string& c : candidates) {
    size_t d = EditDistance(word, c);
    const bool contains = word.size() >= 3 && c.size() >= 3 &&
                          (c.find(word) != std::string::npos || word.find(c) != std::string::npos);
    if (contains)
      d = std::min(d, limit);
    if (d < best_distance) {
      best = &c;
      best_distance = d;
    }
  }
  return best ? " (did you mean \"" + *best + "\"?)" : "";
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names)
    out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace cw
