// core/rng.h — the seeded random number generator (xoshiro256**, seeded through splitmix64).
// Its whole state is four u64 words, so checkpoints save and restore it exactly (invariant 6).
// Distributions are written out here (not <random>'s, which differ between standard libraries),
// so the same seed gives the same numbers on every platform.
#pragma once
#include <array>
#include <cstdint>

namespace st {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { seed_with(seed); }
  void seed_with(uint64_t seed);

  uint64_t next_u64();
  // Uniform in [0, 1) with 24 random bits (exactly representable in float).
  float uniform() { return static_cast<float>(next_u64() >> 40) * (1.0f / 16777216.0f); }
  float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }
  // Standard normal (Box–Muller; no cached spare, so the state alone determines the stream).
  float normal();
  // Uniform integer in [0, n), unbiased (Lemire's method).
  uint64_t below(uint64_t n);

  std::array<uint64_t, 4> state() const { return s_; }
  void set_state(const std::array<uint64_t, 4>& s) { s_ = s; }

 private:
  std::array<uint64_t, 4> s_{};
};

}  // namespace st
