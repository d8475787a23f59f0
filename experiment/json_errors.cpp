#include "experiment/json_errors.h"

#include <algorithm>
#include <cctype>
#include <limits>

namespace st::experiment {

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  const std::string w = lower(word);
  size_t best = std::numeric_limits<size_t>::max();
  std::string best_key;
  for (const auto& c : candidates) {
    const size_t d = edit_distance(w, lower(c));
    if (d < best) best = d, best_key = c;
  }
  if (best_key.empty()) return "";
  if (best <= 1 || (best <= 3 && best * 3 <= w.size())) return " (did you mean \"" + best_key + "\"?)";
  return "";
}

}  // namespace st::experiment
