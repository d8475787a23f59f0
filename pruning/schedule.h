// pruning/schedule.h — the "how much, when" formulas, as pure functions (tested against hand values):
//   gradual_sparsity    Zhu & Gupta 2017: s_t = s_f + (s_i − s_f)(1 − (t − t0)/(t_end − t0))³, clamped
//   iterative_sparsity  after r rounds of pruning p of the remaining weights, p = 1 − (1 − s_f)^(1/R):
//                       s_r = 1 − (1 − s_f)^(r/R)
//   cosine_drop         RigL's drop fraction α/2 · (1 + cos(π t / t_end)), 0 from t_end on
// Tests: tests/pruning/test_parts.cpp
#pragma once
#include <cmath>

namespace st::pruning {

inline double gradual_sparsity(double t, double t0, double t_end, double s_i, double s_f) {
  if (t <= t0) return s_i;
  if (t >= t_end) return s_f;
  const double x = 1.0 - (t - t0) / (t_end - t0);
  return s_f + (s_i - s_f) * x * x * x;
}

inline double iterative_rate(double s_f, int rounds) { return 1.0 - std::pow(1.0 - s_f, 1.0 / rounds); }

inline double iterative_sparsity(int round, int rounds, double s_f) {
  return 1.0 - std::pow(1.0 - s_f, static_cast<double>(round) / rounds);
}

inline double cosine_drop(double t, double t_end, double alpha) {
  if (t >= t_end) return 0.0;
  return alpha / 2.0 * (1.0 + std::cos(M_PI * t / t_end));
}

}  // namespace st::pruning
