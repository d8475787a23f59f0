// pruning/select.h — the k entries with the smallest (or largest) non-negative float keys among
// those a predicate admits, ties to the lower index: exactly the set that sorting (key, index) and
// taking the first k gives. A radix select on the keys' bit patterns (non-negative floats order as
// their bits): three passes over the entries and two tables of 65 536 counters, whatever n. RigL and
// SET pick weights to drop and positions to regrow with it, where a list of (key, index) pairs would
// take 16 bytes per entry of the layer (6.4 GB for a 20 000 × 20 000 layer).
// Tests: tests/pruning/test_select.cpp
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

namespace st::pruning {

// Calls take(i) for each selected index, in increasing order. key(i) -> float >= 0 (its absolute
// value is used); admit(i) -> bool. Selects every admitted entry when k >= their count, none when k <= 0.
template <class Key, class Admit, class Take>
void select_k(int64_t n, int64_t k, bool largest, Key key, Admit admit, Take take) {
  if (k <= 0) return;
  // Ranks as unsigned integers, smallest first: the bits of |key|, inverted when the largest win.
  auto rank = [&](int64_t i) {
    float v = key(i);
    v = v < 0 ? -v : v;
    uint32_t b;
    std::memcpy(&b, &v, sizeof b);
    b &= 0x7fffffffu;  // -0 as +0
    return largest ? ~b : b;
  };
  std::vector<int64_t> count(65536);
  int64_t admitted = 0;
  for (int64_t i = 0; i < n; ++i)
    if (admit(i)) {
      ++count[rank(i) >> 16];
      ++admitted;
    }
  if (k >= admitted) {
    for (int64_t i = 0; i < n; ++i)
      if (admit(i)) take(i);
    return;
  }
  // The high half of the k-th rank, and how many of the k lie in its bucket.
  uint32_t hi = 0;
  int64_t need = k;
  while (count[hi] < need) need -= count[hi++];
  std::fill(count.begin(), count.end(), 0);
  for (int64_t i = 0; i < n; ++i)
    if (admit(i)) {
      const uint32_t r = rank(i);
      if (r >> 16 == hi) ++count[r & 0xffffu];
    }
  uint32_t lo = 0;
  while (count[lo] < need) need -= count[lo++];
  // Every rank below the k-th, then `need` of those equal to it, lowest index first.
  const uint32_t kth = hi << 16 | lo;
  for (int64_t i = 0; i < n; ++i) {
    if (!admit(i)) continue;
    const uint32_t r = rank(i);
    if (r < kth || (r == kth && need-- > 0)) take(i);
  }
}

}  // namespace st::pruning
