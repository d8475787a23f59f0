#include "pruning/granularity.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

namespace st::pruning {

namespace {
constexpr double kDead = -std::numeric_limits<double>::infinity();

// Indices of the k smallest (score, index) pairs, by nth_element (no full sort).
void mark_lowest(std::vector<std::pair<double, int64_t>>& items, int64_t k, std::vector<uint8_t>& keep) {
  if (k <= 0) return;
  k = std::min<int64_t>(k, static_cast<int64_t>(items.size()));
  std::nth_element(items.begin(), items.begin() + (k - 1), items.end());
  for (int64_t i = 0; i < k; ++i) keep[items[i].second] = 0;
}
}  // namespace

Groups::Groups(const GranularityConfig& g, int64_t rows, int64_t cols, int64_t area)
    : type_(g.type), rows_(rows), cols_(cols), area_(area) {
  switch (type_) {
    case GranularityType::Element:
    case GranularityType::NM: count_ = rows * cols; break;
    case GranularityType::Neuron:
    case GranularityType::Filter: count_ = rows; break;
    case GranularityType::Channel: count_ = cols / area; break;
    case GranularityType::Block:
      bh_ = g.block[0];
      bw_ = g.block[1];
      block_cols_ = (cols + bw_ - 1) / bw_;
      count_ = ((rows + bh_ - 1) / bh_) * block_cols_;
      break;
  }
}

int64_t Groups::group_of(int64_t r, int64_t c) const {
  switch (type_) {
    case GranularityType::Element:
    case GranularityType::NM: return r * cols_ + c;
    case GranularityType::Neuron:
    case GranularityType::Filter: return r;
    case GranularityType::Channel: return c / area_;
    case GranularityType::Block: return (r / bh_) * block_cols_ + c / bw_;
  }
  return 0;
}

std::vector<double> Groups::reduce(const float* scores, const uint8_t* mask, Reduction red) const {
  std::vector<double> sum(count_, 0.0);
  std::vector<int64_t> size(count_, 0), live(count_, 0);
  for (int64_t r = 0; r < rows_; ++r) {
    for (int64_t c = 0; c < cols_; ++c) {
      const int64_t i = r * cols_ + c, g = group_of(r, c);
      sum[g] += scores[i];
      ++size[g];
      live[g] += !mask || mask[i];
    }
  }
  for (int64_t g = 0; g < count_; ++g) {
    if (!live[g]) sum[g] = kDead;
    else if (red == Reduction::Mean) sum[g] /= static_cast<double>(size[g]);
    else if (red == Reduction::RootSum) sum[g] = std::sqrt(std::max(0.0, sum[g]));
  }
  return sum;
}

std::vector<uint8_t> Groups::expand(const std::vector<uint8_t>& keep) const {
  std::vector<uint8_t> mask(rows_ * cols_);
  for (int64_t r = 0; r < rows_; ++r)
    for (int64_t c = 0; c < cols_; ++c) mask[r * cols_ + c] = keep[group_of(r, c)];
  return mask;
}

std::vector<uint8_t> nm_mask(const float* scores, int64_t rows, int64_t cols, int n, int m) {
  std::vector<uint8_t> mask(rows * cols, 0);
  std::vector<int> idx(m);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c0 = 0; c0 < cols; c0 += m) {
      const float* s = scores + r * cols + c0;
      for (int j = 0; j < m; ++j) idx[j] = j;
      std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return s[a] > s[b]; });
      for (int j = 0; j < n; ++j) mask[r * cols + c0 + idx[j]] = 1;
    }
  }
  return mask;
}

std::vector<uint8_t> select_lowest(const std::vector<double>& scores, double sparsity) {
  const int64_t G = static_cast<int64_t>(scores.size());
  std::vector<uint8_t> keep(G, 1);
  std::vector<std::pair<double, int64_t>> items(G);
  int64_t dead = 0;
  for (int64_t g = 0; g < G; ++g) {
    items[g] = {scores[g], g};
    dead += scores[g] == kDead;
  }
  const int64_t k = std::max<int64_t>(dead, std::llround(sparsity * G));
  mark_lowest(items, k, keep);
  return keep;
}

std::vector<std::vector<uint8_t>> select_global(const std::vector<std::vector<double>>& scores,
                                                const std::vector<bool>& eligible, double sparsity) {
  std::vector<std::vector<uint8_t>> keep(scores.size());
  std::vector<std::pair<double, int64_t>> items;
  std::vector<int64_t> offset(scores.size() + 1, 0);
  int64_t dead = 0;
  for (size_t l = 0; l < scores.size(); ++l) {
    keep[l].assign(scores[l].size(), 1);
    offset[l + 1] = offset[l] + (eligible[l] ? static_cast<int64_t>(scores[l].size()) : 0);
    if (!eligible[l]) {
      for (size_t g = 0; g < scores[l].size(); ++g)
        if (scores[l][g] == kDead) keep[l][g] = 0;
      continue;
    }
    for (size_t g = 0; g < scores[l].size(); ++g) {
      items.emplace_back(scores[l][g], offset[l] + static_cast<int64_t>(g));
      dead += scores[l][g] == kDead;
    }
  }
  const int64_t total = static_cast<int64_t>(items.size());
  std::vector<uint8_t> flat(total, 1);
  mark_lowest(items, std::max<int64_t>(dead, std::llround(sparsity * total)), flat);
  for (size_t l = 0; l < scores.size(); ++l)
    if (eligible[l])
      for (size_t g = 0; g < scores[l].size(); ++g) keep[l][g] = flat[offset[l] + g];
  return keep;
}

std::vector<uint8_t> select_threshold(const std::vector<double>& scores, double threshold) {
  std::vector<uint8_t> keep(scores.size(), 1);
  for (size_t g = 0; g < scores.size(); ++g)
    if (scores[g] == kDead || scores[g] < threshold) keep[g] = 0;
  return keep;
}

}  // namespace st::pruning
