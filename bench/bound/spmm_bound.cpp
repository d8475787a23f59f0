// bench/bound/spmm_bound.cpp — the floor under csr_spmm_xwt: its inner loop alone.
// Rows of W (sorted random columns, binomial lengths at the given density) walked over a packed
// (IN, 32) x tile exactly as tile_row<2> walks them — broadcast the value, two FMAs with the tile's
// 128-byte line — with no packing, no output transposes and no threads. Prints the cycles per
// nonzero (times converted at --ghz; this VM has no cycle counters) and the time of one tile pass
// over OUT rows. A real kernel makes ⌈batch / 32⌉ / threads passes per thread, so
// passes × pass time is what a kernel with no other cost would take: compare it with oneDNN's
// dense time on the same shape (`sparsetrain bench kernels --shapes OUTxINxB`) run in the same
// minutes. Figures and conclusions: docs/design.md ("What bounds SpMM at 90%").
// Usage: bench_spmm_bound OUT IN density [--ghz 3.35]
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

namespace {

// Two partial sums per row, as tile_row<2> keeps (4 FMA chains in flight); out[0..31] per row.
__attribute__((noinline)) void walk(const std::vector<int>& row_ptr, const int* cols,
                                    const float* vals, const float* xtile, float* out) {
  const int rows = static_cast<int>(row_ptr.size()) - 1;
  for (int r = 0; r < rows; ++r) {
    __m512 p[2][2] = {{_mm512_setzero_ps(), _mm512_setzero_ps()},
                      {_mm512_setzero_ps(), _mm512_setzero_ps()}};
    int k = row_ptr[r];
    const int k1 = row_ptr[r + 1];
    for (; k + 2 <= k1; k += 2)
      for (int q = 0; q < 2; ++q) {
        const __m512 a = _mm512_set1_ps(vals[k + q]);
        const float* xr = xtile + 32 * static_cast<size_t>(cols[k + q]);
        p[q][0] = _mm512_fmadd_ps(a, _mm512_load_ps(xr), p[q][0]);
        p[q][1] = _mm512_fmadd_ps(a, _mm512_load_ps(xr + 16), p[q][1]);
      }
    if (k < k1) {
      const __m512 a = _mm512_set1_ps(vals[k]);
      const float* xr = xtile + 32 * static_cast<size_t>(cols[k]);
      p[0][0] = _mm512_fmadd_ps(a, _mm512_load_ps(xr), p[0][0]);
      p[0][1] = _mm512_fmadd_ps(a, _mm512_load_ps(xr + 16), p[0][1]);
    }
    float* o = out + 32 * (r & 15);
    _mm512_store_ps(o, _mm512_add_ps(p[0][0], p[1][0]));
    _mm512_store_ps(o + 16, _mm512_add_ps(p[0][1], p[1][1]));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s OUT IN density [--ghz 3.35]\n", argv[0]);
    return 2;
  }
  const int out_rows = std::atoi(argv[1]), in = std::atoi(argv[2]);
  const double density = std::atof(argv[3]);
  double ghz = 3.35;
  for (int i = 4; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--ghz") == 0) ghz = std::atof(argv[i + 1]);
  if (out_rows <= 0 || in <= 0 || !(density > 0.0 && density <= 1.0) || !(ghz > 0.0)) {
    std::fprintf(stderr, "%s: OUT and IN must be positive, density in (0, 1], --ghz positive\n",
                 argv[0]);
    return 2;
  }
  std::mt19937 rng(1);
  std::binomial_distribution<int> length(in, density);
  std::vector<int> row_ptr(out_rows + 1, 0), cols;
  for (int r = 0; r < out_rows; ++r) {  // sorted distinct columns, as in a CSR row
    std::vector<int> all(in);
    for (int c = 0; c < in; ++c) all[c] = c;
    const int n = length(rng);
    for (int i = 0; i < n; ++i) std::swap(all[i], all[i + static_cast<int>(rng() % (in - i))]);
    std::sort(all.begin(), all.begin() + n);
    cols.insert(cols.end(), all.begin(), all.begin() + n);
    row_ptr[r + 1] = row_ptr[r] + n;
  }
  const std::vector<float> vals(cols.size(), 0.5f);
  float* xtile = static_cast<float*>(std::aligned_alloc(64, static_cast<size_t>(in) * 128));
  for (size_t i = 0; i < static_cast<size_t>(in) * 32; ++i) xtile[i] = 1e-3f;
  alignas(64) static float out[32 * 16];
  double best_ns = 1e300;
  for (int rep = 0; rep < 200; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    walk(row_ptr, cols.data(), vals.data(), xtile, out);
    const auto t1 = std::chrono::steady_clock::now();
    best_ns = std::min(best_ns, std::chrono::duration<double, std::nano>(t1 - t0).count());
  }
  const double nnz = static_cast<double>(std::max<size_t>(cols.size(), 1));
  std::printf("%dx%d density %.3f: %.2f cycles per nonzero at %.2f GHz, %.1f us per tile pass "
              "(best of 200; out[0] %g)\n",
              out_rows, in, density, best_ns / nnz * ghz, ghz, best_ns / 1e3, out[0]);
  std::free(xtile);
  return 0;
}
