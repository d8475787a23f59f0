// kernels/elementwise.cpp — elementwise ops, bias add/grad, reductions, fused softmax-cross-entropy.
// Shapes are documented in kernels/elementwise.h. Loops are OpenMP-parallel (static schedule) only
// above a size where the fork/join pays; every reduction sums fixed per-thread chunks in double
// and adds the chunk results in chunk order, so a fixed thread count gives fixed bits.
// Reference: kernels/reference.cpp (softmax_xent); tests: tests/kernels/test_elementwise.cpp.
#include "kernels/elementwise.h"
#include "kernels/isa_table.h"
#include "kernels/parallel.h"

#include <omp.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>

namespace st::kernels::ST_ISA_NS {
namespace {

constexpr int64_t kParallelMinElems = 1 << 16;
constexpr int kMaxChunks = 256;

// Number of threads a reduction over n elements uses (1 below the threshold).
int reduction_threads(int64_t n) {
  if (n < kParallelMinElems || omp_in_parallel()) return 1;
  return std::min(omp_get_max_threads(), kMaxChunks);
}

}  // namespace

void relu_forward(int64_t n, const float* x, float* y) {
  parallel_for(n, worth_parallel(n, kParallelMinElems), [=](int64_t i) {
    y[i] = x[i] > 0.0f ? x[i] : 0.0f;
  });
}

void relu_backward(int64_t n, const float* dy, const float* y, float* dx) {
  parallel_for(n, worth_parallel(n, kParallelMinElems), [=](int64_t i) {
    dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
  });
}

void add(int64_t n, const float* a, const float* b, float* out) {
  parallel_for(n, worth_parallel(n, kParallelMinElems), [=](int64_t i) {
    out[i] = a[i] + b[i];
  });
}

void axpy(int64_t n, float alpha, const float* x, float* y) {
  parallel_for(n, worth_parallel(n, kParallelMinElems), [=](int64_t i) {
    y[i] += alpha * x[i];
  });
}

void scale(int64_t n, float alpha, const float* x, float* y) {
  parallel_for(n, worth_parallel(n, kParallelMinElems), [=](int64_t i) {
    y[i] = alpha * x[i];
  });
}

void fill(int64_t n, float value, float* y) {
  parallel_for(n, worth_parallel(n, kParallelMinElems), [=](int64_t i) {
    y[i] = value;
  });
}

void bias_add_rows(int rows, int cols, const float* bias, float* y) {
  parallel_for(rows, worth_parallel(static_cast<int64_t>(rows) * cols, kParallelMinElems), [=](int64_t r) {
    float* row = y + static_cast<size_t>(r) * cols;
    for (int c = 0; c < cols; ++c) row[c] += bias[c];
  });
}

void bias_grad_rows(int rows, int cols, const float* dy, float* db, bool accumulate) {
  // Each db[c] is summed over rows, in row order, in double, by one thread. A thread takes a
  // contiguous share of the columns and walks it in panels of kPanel columns down all rows, so
  // each row is read as one sequential run (16-column strips down 128 rows of a million columns
  // read one line per row per pass and ran at a third of the memory bandwidth).
  constexpr int kPanel = 1024;
  const int panels = (cols + kPanel - 1) / kPanel;
  parallel_range(panels, worth_parallel(static_cast<int64_t>(rows) * cols, kParallelMinElems),
                 [=](int64_t p0, int64_t p1) {
    double acc[kPanel];
    for (int64_t p = p0; p < p1; ++p) {
      const int c0 = static_cast<int>(p) * kPanel, width = std::min(kPanel, cols - c0);
      std::fill_n(acc, width, 0.0);
      for (int r = 0; r < rows; ++r) {
        const float* row = dy + static_cast<size_t>(r) * cols + c0;
        for (int c = 0; c < width; ++c) acc[c] += row[c];
      }
      for (int c = 0; c < width; ++c)
        db[c0 + c] = static_cast<float>(accumulate ? db[c0 + c] + acc[c] : acc[c]);
    }
  });
}

void bias_add_channels(int N, int C, int HW, const float* bias, float* y) {
  const int64_t planes = static_cast<int64_t>(N) * C;
  parallel_for(planes, worth_parallel(planes * HW, kParallelMinElems), [=](int64_t p) {
    float* plane = y + p * HW;
    const float b = bias[p % C];
    for (int i = 0; i < HW; ++i) plane[i] += b;
  });
}

void bias_grad_channels(int N, int C, int HW, const float* dy, float* db, bool accumulate) {
  parallel_for(C, worth_parallel(static_cast<int64_t>(N) * C * HW, kParallelMinElems), [=](int64_t c) {
    double acc = 0.0;
    for (int n = 0; n < N; ++n) {
      const float* plane = dy + (static_cast<size_t>(n) * C + c) * HW;
#pragma omp simd reduction(+ : acc)
      for (int i = 0; i < HW; ++i) acc += plane[i];
    }
    db[c] = static_cast<float>(accumulate ? db[c] + acc : acc);
  });
}

void dropout_apply(int64_t n, const float* x, const uint8_t* keep, float scale, float* y) {
  parallel_for(n, worth_parallel(n, kParallelMinElems), [=](int64_t i) {
    y[i] = keep[i] ? x[i] * scale : 0.0f;
  });
}

double softmax_xent_forward(int B, int C, const float* logits, const int32_t* labels, float* probs) {
  const int nt = reduction_threads(static_cast<int64_t>(B) * C);
  double partial[kMaxChunks] = {};
  parallel_chunks(nt, [&](int t) {  // chunk t: its partial depends on nt only, not on the team
    const int b0 = static_cast<int>(static_cast<int64_t>(B) * t / nt);
    const int b1 = static_cast<int>(static_cast<int64_t>(B) * (t + 1) / nt);
    double loss = 0.0;
    for (int b = b0; b < b1; ++b) {
      const float* z = logits + static_cast<size_t>(b) * C;
      float* p = probs + static_cast<size_t>(b) * C;
      float zmax = z[0];
      for (int c = 1; c < C; ++c) zmax = std::max(zmax, z[c]);
      double denom = 0.0;
      for (int c = 0; c < C; ++c) {
        p[c] = std::exp(z[c] - zmax);
        denom += p[c];
      }
      const float inv = static_cast<float>(1.0 / denom);
      for (int c = 0; c < C; ++c) p[c] *= inv;
      const int32_t label = labels[b];
      assert(label >= 0 && label < C);
      // −log softmax = log Σ exp(z − max) − (z_label − max): never takes log of a tiny probability.
      loss += std::log(denom) - (static_cast<double>(z[label]) - zmax);
    }
    partial[t] = loss;
  });
  double loss = 0.0;
  for (int t = 0; t < nt; ++t) loss += partial[t];
  return B > 0 ? loss / B : 0.0;
}

void softmax_xent_backward(int B, int C, const float* probs, const int32_t* labels, float dloss,
                           float* dlogits) {
  const float scale = dloss / static_cast<float>(B);
  parallel_for(B, worth_parallel(static_cast<int64_t>(B) * C, kParallelMinElems), [=](int64_t b) {
    const float* p = probs + static_cast<size_t>(b) * C;
    float* d = dlogits + static_cast<size_t>(b) * C;
    for (int c = 0; c < C; ++c) d[c] = p[c] * scale;
    d[labels[b]] = (p[labels[b]] - 1.0f) * scale;
  });
}

double sum(int64_t n, const float* x) {
  const int nt = reduction_threads(n);
  double partial[kMaxChunks] = {};
  parallel_chunks(nt, [&](int t) {  // chunk t: its partial depends on nt only, not on the team
    const int64_t i0 = n * t / nt, i1 = n * (t + 1) / nt;
    double acc = 0.0;
    // simd lanes are a fixed, compile-time split of the chunk: still the same bits every run.
#pragma omp simd reduction(+ : acc)
    for (int64_t i = i0; i < i1; ++i) acc += x[i];
    partial[t] = acc;
  });
  double total = 0.0;
  for (int t = 0; t < nt; ++t) total += partial[t];
  return total;
}

int64_t first_non_finite(int64_t n, const float* x) {
  // NaN and ±Inf are the floats whose magnitude bits are at least 0x7f800000. An integer max over
  // the magnitudes vectorizes (a branch per element, or a float compare with NaN, does not), so the
  // check is one streaming read, split over threads like sum.
  const int nt = reduction_threads(n);
  uint32_t partial[kMaxChunks] = {};
  parallel_chunks(nt, [&](int t) {
    const int64_t i0 = n * t / nt, i1 = n * (t + 1) / nt;
    uint32_t worst = 0;
    for (int64_t i = i0; i < i1; ++i) {
      uint32_t bits;
      std::memcpy(&bits, x + i, sizeof bits);
      worst = std::max(worst, bits & 0x7fffffffu);
    }
    partial[t] = worst;
  });
  uint32_t worst = 0;
  for (int t = 0; t < nt; ++t) worst = std::max(worst, partial[t]);
  if (worst < 0x7f800000u) return -1;
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) return i;
  return -1;
}

void argmax_rows(int rows, int cols, const float* x, int32_t* out) {
  parallel_for(rows, worth_parallel(static_cast<int64_t>(rows) * cols, kParallelMinElems), [=](int64_t r) {
    const float* row = x + static_cast<size_t>(r) * cols;
    int best = 0;
    for (int c = 1; c < cols; ++c)
      if (row[c] > row[best]) best = c;
    out[r] = best;
  });
}

}  // namespace st::kernels::ST_ISA_NS
