#include "pruning/sparse_pattern.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "core/check.h"

namespace st::pruning {

namespace {

constexpr int64_t kMaxNnz = std::numeric_limits<int32_t>::max();

// LSD radix sort of a[0..n) by bits [0, bits) (bits above must be equal), ping-ponging with b: as few
// passes of ≤ 11-bit digits as the bits need, every digit's histogram counted in one read. Returns
// the buffer that holds the result (a or b).
uint64_t* lsd_sort(uint64_t* a, uint64_t* b, size_t n, int bits, std::vector<size_t>& count) {
  const int passes = (bits + 10) / 11;
  if (passes == 0) return a;
  const int digit = (bits + passes - 1) / passes;
  const size_t buckets = size_t{1} << digit;
  const uint64_t mask = buckets - 1;
  count.assign(buckets * static_cast<size_t>(passes), 0);
  for (size_t i = 0; i < n; ++i)
    for (int p = 0; p < passes; ++p) ++count[p * buckets + ((a[i] >> (p * digit)) & mask)];
  for (int p = 0; p < passes; ++p) {
    size_t* c = count.data() + p * buckets;
    size_t sum = 0;
    for (size_t k = 0; k < buckets; ++k) {
      const size_t here = c[k];
      c[k] = sum;
      sum += here;
    }
    const int shift = p * digit;
    for (size_t i = 0; i < n; ++i) b[c[(a[i] >> shift) & mask]++] = a[i];
    std::swap(a, b);
  }
  return a;
}

// Sorts a[0..n) ascending; every value is ≤ max_value. Keys wider than 22 bits are first split by
// their top 11 bits (one pass over memory), then each part, small enough to stay in cache for
// uniformly spread keys, is LSD-sorted on the rest. Small inputs go to std::sort.
void radix_sort(uint64_t* a, size_t n, uint64_t max_value, std::vector<uint64_t>& tmp) {
  if (n < 1024) {
    std::sort(a, a + n);
    return;
  }
  int bits = 0;
  while (bits < 64 && (max_value >> bits) != 0) ++bits;
  tmp.resize(n);
  std::vector<size_t> count;
  if (bits <= 22) {
    const uint64_t* r = lsd_sort(a, tmp.data(), n, bits, count);
    if (r != a) std::memcpy(a, r, n * sizeof(uint64_t));
    return;
  }
  constexpr int kTop = 11;
  const int shift = bits - kTop;
  std::vector<size_t> start((size_t{1} << kTop) + 1, 0);
  for (size_t i = 0; i < n; ++i) ++start[(a[i] >> shift) + 1];
  for (size_t k = 1; k < start.size(); ++k) start[k] += start[k - 1];
  std::vector<size_t> next(start.begin(), start.end() - 1);
  for (size_t i = 0; i < n; ++i) tmp[next[a[i] >> shift]++] = a[i];
  for (size_t k = 0; k + 1 < start.size(); ++k) {
    const size_t begin = start[k], m = start[k + 1] - begin;
    if (m < 256) {
      std::sort(tmp.data() + begin, tmp.data() + begin + m);
      std::memcpy(a + begin, tmp.data() + begin, m * sizeof(uint64_t));
      continue;
    }
    const uint64_t* r = lsd_sort(tmp.data() + begin, a + begin, m, shift, count);
    if (r != a + begin) std::memcpy(a + begin, r, m * sizeof(uint64_t));
  }
}

// `count` distinct positions of [0, n_positions) outside `excluded`, sorted ascending, every such set
// equally likely. Each round draws as many i.i.d. uniform positions as are still missing, sorts them
// (so `excluded` sees them in ascending order: monotone, cache-friendly look-ups), drops the excluded
// ones and merges the rest in without repeats. Which positions a round adds depends on the draws only
// through which eligible positions they hit, so the outcome's law is invariant under permutations of
// the eligible positions: uniform over the count-sets. Expected O(count) draws when count is at most
// half of the eligible positions and those are at least half of all positions.
template <class Excluded>
std::vector<uint64_t> sample_sorted(uint64_t n_positions, int64_t count, Rng& rng, Excluded excluded) {
  std::vector<uint64_t> s;
  s.reserve(static_cast<size_t>(count));
  std::vector<uint64_t> tmp;
  while (static_cast<int64_t>(s.size()) < count) {
    const size_t old = s.size();
    const size_t need = static_cast<size_t>(count) - old;
    for (size_t i = 0; i < need; ++i) s.push_back(rng.below(n_positions));
    radix_sort(s.data() + old, need, n_positions - 1, tmp);
    s.erase(std::remove_if(s.begin() + static_cast<std::ptrdiff_t>(old), s.end(), excluded), s.end());
    std::inplace_merge(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(old), s.end());
    s.erase(std::unique(s.begin(), s.end()), s.end());
  }
  return s;
}

// A CSR (values 0, row_order computed) holding the sorted linear positions r·cols + c in pos.
kernels::CsrMatrix csr_from_positions(int rows, int cols, const std::vector<uint64_t>& pos) {
  kernels::CsrMatrix a;
  a.rows = rows;
  a.cols = cols;
  a.row_ptr.assign(static_cast<size_t>(rows) + 1, 0);
  a.col_idx.resize(pos.size());
  a.values.assign(pos.size(), 0.0f);
  int r = 0;
  uint64_t row_begin = 0;
  const uint64_t c64 = static_cast<uint64_t>(cols);
  for (size_t k = 0; k < pos.size(); ++k) {
    while (pos[k] >= row_begin + c64) {
      a.row_ptr[++r] = static_cast<int32_t>(k);
      row_begin += c64;
    }
    a.col_idx[k] = static_cast<int32_t>(pos[k] - row_begin);
  }
  while (r < rows) a.row_ptr[++r] = static_cast<int32_t>(pos.size());
  kernels::csr_compute_row_order(a);
  return a;
}

// The positions (r·cols + c, ascending) of [0, rows·cols) outside the sorted set `taken`.
std::vector<uint64_t> complement_of_sorted(uint64_t n_positions, const std::vector<uint64_t>& taken) {
  std::vector<uint64_t> out;
  out.reserve(n_positions - taken.size());
  size_t t = 0;
  for (uint64_t p = 0; p < n_positions; ++p) {
    if (t < taken.size() && taken[t] == p) {
      ++t;
      continue;
    }
    out.push_back(p);
  }
  return out;
}

// The positions (r·cols + c, ascending) outside w's pattern.
std::vector<uint64_t> free_positions(const kernels::CsrMatrix& w) {
  const uint64_t n_positions = static_cast<uint64_t>(w.rows) * static_cast<uint64_t>(w.cols);
  std::vector<uint64_t> out;
  out.reserve(n_positions - static_cast<uint64_t>(w.nnz()));
  for (int r = 0; r < w.rows; ++r) {
    const uint64_t base = static_cast<uint64_t>(r) * static_cast<uint64_t>(w.cols);
    int32_t k = w.row_ptr[r];
    const int32_t end = w.row_ptr[r + 1];
    for (int c = 0; c < w.cols; ++c) {
      if (k < end && w.col_idx[k] == c) {
        ++k;
        continue;
      }
      out.push_back(base + static_cast<uint64_t>(c));
    }
  }
  return out;
}

// Moves k uniformly chosen elements of v to v[0..k) (partial Fisher–Yates) and drops the rest.
template <class T>
void choose_prefix(std::vector<T>& v, size_t k, Rng& rng) {
  for (size_t i = 0; i < k; ++i) {
    const size_t j = i + static_cast<size_t>(rng.below(v.size() - i));
    std::swap(v[i], v[j]);
  }
  v.resize(k);
}

void check_csr(const kernels::CsrMatrix& w, const char* what) {
  ST_CHECK(w.rows >= 0 && w.cols >= 0 && w.row_ptr.size() == static_cast<size_t>(w.rows) + 1 &&
               w.col_idx.size() == static_cast<size_t>(w.nnz()),
           what, ": not a CSR matrix (rows ", w.rows, ", cols ", w.cols, ", row_ptr size ",
           w.row_ptr.size(), ", col_idx size ", w.col_idx.size(), ")");
}

}  // namespace

kernels::CsrMatrix sample_pattern(int rows, int cols, int64_t nnz, Rng& rng) {
  ST_CHECK(rows >= 0 && cols >= 0, "sample_pattern: negative shape ", rows, "x", cols);
  const int64_t n_positions = static_cast<int64_t>(rows) * cols;
  ST_CHECK(nnz >= 0 && nnz <= n_positions, "sample_pattern: nnz ", nnz, " outside [0, ", n_positions,
           "] for a ", rows, "x", cols, " matrix");
  ST_CHECK(nnz <= kMaxNnz, "sample_pattern: nnz ", nnz, " exceeds the CSR limit ", kMaxNnz);
  const uint64_t n = static_cast<uint64_t>(n_positions);
  auto none = [](uint64_t) { return false; };
  if (2 * nnz <= n_positions) return csr_from_positions(rows, cols, sample_sorted(n, nnz, rng, none));
  // Dense side: draw the positions left out (fewer than half), keep the rest. n < 2·nnz < 2^32 here.
  const std::vector<uint64_t> out = sample_sorted(n, n_positions - nnz, rng, none);
  return csr_from_positions(rows, cols, complement_of_sorted(n, out));
}

void init_by_fan_in(kernels::CsrMatrix& w, models::Init init, Rng& rng, float* bias) {
  check_csr(w, "init_by_fan_in");
  const int64_t nnz = w.nnz();
  w.values.resize(static_cast<size_t>(nnz));
  float* v = w.values.data();
  const bool glorot = init == models::Init::glorot_uniform || init == models::Init::glorot_normal;
  std::vector<int32_t> col_count;
  if (glorot) {
    col_count.assign(static_cast<size_t>(w.cols), 0);
    for (int64_t k = 0; k < nnz; ++k) ++col_count[w.col_idx[k]];
  }
  for (int r = 0; r < w.rows; ++r) {
    const int32_t begin = w.row_ptr[r], end = w.row_ptr[r + 1];
    const int64_t fan_in = std::max<int64_t>(end - begin, 1);
    // models::init_draw: the expressions of models::initialize, so a full pattern gives the dense values.
    for (int32_t k = begin; k < end; ++k)
      v[k] = models::init_draw(init, fan_in, glorot ? int64_t{col_count[w.col_idx[k]]} : 0, rng);
  }
  if (!bias) return;
  if (init != models::Init::pytorch) {
    std::fill_n(bias, w.rows, 0.0f);
    return;
  }
  for (int r = 0; r < w.rows; ++r) {
    const int64_t fan_in = std::max<int64_t>(w.row_ptr[r + 1] - w.row_ptr[r], 1);
    const float bound = 1.f / std::sqrt(static_cast<float>(fan_in));
    bias[r] = rng.uniform(-bound, bound);
  }
}

std::vector<int64_t> smallest_nonzeros(const kernels::CsrMatrix& w, int64_t k) {
  const int64_t nnz = w.nnz();
  ST_CHECK(k >= 0 && k <= nnz, "smallest_nonzeros: k ", k, " outside [0, ", nnz, "]");
  ST_CHECK(w.values.size() == static_cast<size_t>(nnz), "smallest_nonzeros: ", w.values.size(),
           " values for ", nnz, " nonzeros");
  std::vector<int64_t> out;
  if (k == nnz) {
    out.resize(static_cast<size_t>(nnz));
    for (int64_t i = 0; i < nnz; ++i) out[i] = i;
    return out;
  }
  if (k == 0) return out;
  // Key: |value|'s bits (monotone in |value| for non-negative floats; NaN above +inf), then index.
  std::vector<uint64_t> keys(static_cast<size_t>(nnz));
  for (int64_t i = 0; i < nnz; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &w.values[i], sizeof bits);
    keys[i] = (static_cast<uint64_t>(bits & 0x7fffffffu) << 32) | static_cast<uint64_t>(i);
  }
  std::nth_element(keys.begin(), keys.begin() + k, keys.end());
  for (int64_t i = 0; i < k; ++i) keys[i] &= 0xffffffffu;
  keys.resize(static_cast<size_t>(k));
  std::vector<uint64_t> tmp;
  radix_sort(keys.data(), keys.size(), static_cast<uint64_t>(nnz - 1), tmp);
  out.assign(keys.begin(), keys.end());
  return out;
}

PatternChange change_pattern(const kernels::CsrMatrix& w, const std::vector<int64_t>& drop,
                             const std::vector<std::pair<int, int>>& grow) {
  check_csr(w, "change_pattern");
  const int64_t nnz = w.nnz();
  std::vector<int64_t> d_sorted;
  const std::vector<int64_t>* d = &drop;
  if (!std::is_sorted(drop.begin(), drop.end())) {
    d_sorted = drop;
    std::sort(d_sorted.begin(), d_sorted.end());
    d = &d_sorted;
  }
  for (size_t i = 0; i < d->size(); ++i) {
    const int64_t x = (*d)[i];
    ST_CHECK(x >= 0 && x < nnz, "change_pattern: drop index ", x, " outside [0, ", nnz, ")");
    ST_CHECK(i == 0 || (*d)[i - 1] != x, "change_pattern: drop index ", x, " given twice");
  }
  std::vector<std::pair<int, int>> g_sorted;
  const std::vector<std::pair<int, int>>* g = &grow;
  if (!std::is_sorted(grow.begin(), grow.end())) {
    g_sorted = grow;
    std::sort(g_sorted.begin(), g_sorted.end());
    g = &g_sorted;
  }
  for (size_t i = 0; i < g->size(); ++i) {
    const auto [r, c] = (*g)[i];
    ST_CHECK(r >= 0 && r < w.rows && c >= 0 && c < w.cols, "change_pattern: grow position (", r, ", ",
             c, ") outside the ", w.rows, "x", w.cols, " matrix");
    ST_CHECK(i == 0 || (*g)[i - 1] != (*g)[i], "change_pattern: grow position (", r, ", ", c,
             ") given twice");
  }
  const int64_t new_nnz = nnz - static_cast<int64_t>(d->size()) + static_cast<int64_t>(g->size());
  ST_CHECK(new_nnz <= kMaxNnz, "change_pattern: ", new_nnz, " nonzeros exceed the CSR limit ", kMaxNnz);

  PatternChange out;
  out.dropped = static_cast<int64_t>(d->size());
  kernels::CsrMatrix& a = out.w;
  a.rows = w.rows;
  a.cols = w.cols;
  a.row_ptr.assign(static_cast<size_t>(w.rows) + 1, 0);
  a.col_idx.reserve(static_cast<size_t>(new_nnz));
  a.values.reserve(static_cast<size_t>(new_nnz));
  out.source.reserve(static_cast<size_t>(new_nnz));
  const bool has_values = w.values.size() == static_cast<size_t>(nnz);
  size_t di = 0, gi = 0;
  for (int r = 0; r < w.rows; ++r) {
    int32_t k = w.row_ptr[r];
    const int32_t end = w.row_ptr[r + 1];
    for (;;) {
      while (k < end && di < d->size() && (*d)[di] == k) ++k, ++di;  // dropped
      const bool old_left = k < end;
      const bool grow_left = gi < g->size() && (*g)[gi].first == r;
      if (!old_left && !grow_left) break;
      if (old_left && (!grow_left || w.col_idx[k] < (*g)[gi].second)) {
        a.col_idx.push_back(w.col_idx[k]);
        a.values.push_back(has_values ? w.values[k] : 0.0f);
        out.source.push_back(k);
        ++k;
      } else {
        const int c = (*g)[gi].second;
        ST_CHECK(!old_left || w.col_idx[k] != c, "change_pattern: grow position (", r, ", ", c,
                 ") is already in the pattern and not dropped");
        a.col_idx.push_back(c);
        a.values.push_back(0.0f);
        out.source.push_back(-1);
        ++gi;
      }
    }
    a.row_ptr[r + 1] = static_cast<int32_t>(a.col_idx.size());
  }
  kernels::csr_compute_row_order(a);
  return out;
}

PatternChange drop_and_regrow_random(const kernels::CsrMatrix& w, double fraction, Rng& rng) {
  check_csr(w, "drop_and_regrow_random");
  ST_CHECK(fraction >= 0.0 && fraction <= 1.0, "drop_and_regrow_random: fraction ", fraction,
           " outside [0, 1]");
  const int64_t nnz = w.nnz();
  const int64_t k = std::llround(fraction * static_cast<double>(nnz));
  const std::vector<int64_t> drop = smallest_nonzeros(w, k);
  const uint64_t n_positions = static_cast<uint64_t>(w.rows) * static_cast<uint64_t>(w.cols);
  const int64_t n_free = static_cast<int64_t>(n_positions) - nnz;
  const uint64_t cols = static_cast<uint64_t>(w.cols);

  std::vector<uint64_t> pos;  // grown positions r·cols + c, ascending
  std::vector<int64_t> back;  // dropped CSR indices that come back (only when k > n_free)
  if (k == 0) {
  } else if (2 * k <= n_free && 2 * nnz <= static_cast<int64_t>(n_positions)) {
    const int32_t* rp = w.row_ptr.data();
    const int32_t* ci = w.col_idx.data();
    pos = sample_sorted(n_positions, k, rng, [=](uint64_t p) {
      const uint64_t r = p / cols;
      const int32_t c = static_cast<int32_t>(p - r * cols);
      return std::binary_search(ci + rp[r], ci + rp[r + 1], c);
    });
  } else {
    pos = free_positions(w);  // n_positions < 3·nnz here, so this is O(nnz)
    if (k < n_free) {
      choose_prefix(pos, static_cast<size_t>(k), rng);
      std::vector<uint64_t> tmp;
      radix_sort(pos.data(), pos.size(), n_positions - 1, tmp);
    } else if (k > n_free) {
      back = drop;
      choose_prefix(back, static_cast<size_t>(k - n_free), rng);
    }
  }
  std::vector<std::pair<int, int>> grow;
  grow.reserve(static_cast<size_t>(k));
  for (uint64_t p : pos) {
    const uint64_t r = p / cols;
    grow.emplace_back(static_cast<int>(r), static_cast<int>(p - r * cols));
  }
  for (int64_t x : back) {
    const int r = static_cast<int>(std::upper_bound(w.row_ptr.begin(), w.row_ptr.end(), x) -
                                   w.row_ptr.begin()) - 1;
    grow.emplace_back(r, w.col_idx[x]);
  }
  return change_pattern(w, drop, grow);
}

PatternChange drop_and_regrow_by_gradient(const kernels::CsrMatrix& w, double fraction, int panel_rows,
                                          const std::function<void(int, int, float*)>& gradient,
                                          std::vector<float>* grown_grad) {
  check_csr(w, "drop_and_regrow_by_gradient");
  ST_CHECK(fraction >= 0.0 && fraction <= 1.0, "drop_and_regrow_by_gradient: fraction ", fraction,
           " outside [0, 1]");
  ST_CHECK(panel_rows >= 1, "drop_and_regrow_by_gradient: panel_rows ", panel_rows, " < 1");
  const int64_t nnz = w.nnz();
  const int64_t k = std::llround(fraction * static_cast<double>(nnz));
  const uint64_t cols = static_cast<uint64_t>(w.cols);
  PatternChange none;
  if (k <= 0 || static_cast<uint64_t>(nnz) == static_cast<uint64_t>(w.rows) * cols) return none;
  const std::vector<int64_t> drop = smallest_nonzeros(w, k);
  std::vector<uint8_t> dropped(static_cast<size_t>(nnz), 0);
  for (int64_t i : drop) dropped[static_cast<size_t>(i)] = 1;

  // Bounded top-k: candidates ordered by |g| descending (the bits of |g|: NaN above +inf), then
  // position ascending. Positions arrive in increasing order, so once the buffer has been cut to
  // the best k, a later one must beat the k-th strictly.
  struct Cand {
    uint32_t rank;  // bits of |g|
    uint64_t pos;
    float g;
  };
  auto better = [](const Cand& a, const Cand& b) { return a.rank != b.rank ? a.rank > b.rank : a.pos < b.pos; };
  std::vector<Cand> best;
  best.reserve(static_cast<size_t>(2 * k));
  bool cut = false;
  uint32_t kth = 0;  // rank of the k-th best once cut
  auto shrink = [&] {
    std::nth_element(best.begin(), best.begin() + (k - 1), best.end(), better);
    best.resize(static_cast<size_t>(k));
    kth = std::min_element(best.begin(), best.end(), [](const Cand& a, const Cand& b) { return a.rank < b.rank; })->rank;
    cut = true;
  };
  std::vector<float> panel(static_cast<size_t>(std::min(panel_rows, w.rows)) * cols);
  for (int r0 = 0; r0 < w.rows; r0 += panel_rows) {
    const int r1 = std::min(w.rows, r0 + panel_rows);
    gradient(r0, r1, panel.data());
    for (int r = r0; r < r1; ++r) {
      const float* g = panel.data() + static_cast<size_t>(r - r0) * cols;
      int32_t e = w.row_ptr[r];
      const int32_t end = w.row_ptr[r + 1];
      for (int c = 0; c < w.cols; ++c) {
        if (e < end && w.col_idx[e] == c) {
          if (!dropped[static_cast<size_t>(e++)]) continue;  // kept: not a candidate
        }
        float a = std::fabs(g[c]);
        uint32_t rank;
        std::memcpy(&rank, &a, sizeof rank);
        rank &= 0x7fffffffu;
        if (cut && rank <= kth) continue;
        best.push_back({rank, static_cast<uint64_t>(r) * cols + static_cast<uint64_t>(c), g[c]});
        if (best.size() == static_cast<size_t>(2 * k)) shrink();
      }
    }
  }
  if (best.size() > static_cast<size_t>(k)) shrink();
  std::sort(best.begin(), best.end(), [](const Cand& a, const Cand& b) { return a.pos < b.pos; });
  std::vector<std::pair<int, int>> grow;
  grow.reserve(best.size());
  for (const Cand& c : best) {
    const uint64_t r = c.pos / cols;
    grow.emplace_back(static_cast<int>(r), static_cast<int>(c.pos - r * cols));
  }
  PatternChange out = change_pattern(w, drop, grow);
  out.dropped = k;
  if (grown_grad) {
    grown_grad->clear();
    for (const Cand& c : best) grown_grad->push_back(c.g);
  }
  return out;
}

void carry_over(const std::vector<int64_t>& source, const float* old_values, float* out) {
  const size_t n = source.size();
  for (size_t k = 0; k < n; ++k) out[k] = source[k] >= 0 ? old_values[source[k]] : 0.0f;
}

}  // namespace st::pruning
