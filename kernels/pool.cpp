// kernels/pool.cpp — 2-D max and average pooling (NCHW), forward and backward.
//   max_pool2d_forward:  y (N, C, OH, OW) = window max of x (N, C, H, W); argmax = ih·W + iw in the plane
//   max_pool2d_backward: dx = scatter-add of dy at argmax                  (overwrites dx)
//   avg_pool2d_forward/backward: window mean, padded cells count in the divisor (count_include_pad)
// Each (n, c) plane is independent, so planes are split statically over OpenMP threads; a thread
// writes only its own planes, which keeps backward's scatter race-free and deterministic.
// Reference: kernels/reference.cpp. Tests: tests/kernels/test_pool.cpp.
#include "kernels/pool.h"
#include "kernels/isa_table.h"
#include "kernels/parallel.h"
#include "kernels/simd.h"

#include <algorithm>
#include <cassert>
#include <cstddef>


namespace st::kernels::ST_ISA_NS {
namespace {

#if defined(ST_HAVE_SIMD)
// The unpadded 2×2 window with stride 2 of every CNN here: the vector kernels below.
bool is_2x2_stride2(const Pool2dShape& s) {
  return s.KH == 2 && s.KW == 2 && s.stride_h == 2 && s.stride_w == 2 && s.pad_h == 0 && s.pad_w == 0;
}
#endif

// Parallel only when there is enough work to beat the fork/join cost.
constexpr long long kParallelMinElems = 1 << 15;

#if defined(__AVX512F__)
// The 2×2, stride-2, unpadded window of every CNN here, 16 outputs at a time: two input rows
// split into even and odd columns give the window's four candidates a, b (top), c, d (bottom),
// compared in row-major order with a strict > — the same first-maximum rule, NaN handling and
// argmax as the general loop below.
void max_pool2x2_plane(int H, int W, int OH, int OW, const float* in, float* out, int32_t* arg) {
  (void)H;
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  for (int oh = 0; oh < OH; ++oh) {
    const float* r0 = in + static_cast<size_t>(2 * oh) * W;
    const float* r1 = r0 + W;
    for (int ow0 = 0; ow0 < OW; ow0 += 16) {
      const int n = std::min(16, OW - ow0);
      const __mmask16 m0 = lanes(2 * n), m1 = lanes(2 * n - 16);
      const __m512 t0 = _mm512_maskz_loadu_ps(m0, r0 + 2 * ow0), t1 = _mm512_maskz_loadu_ps(m1, r0 + 2 * ow0 + 16);
      const __m512 u0 = _mm512_maskz_loadu_ps(m0, r1 + 2 * ow0), u1 = _mm512_maskz_loadu_ps(m1, r1 + 2 * ow0 + 16);
      const __m512 a = _mm512_permutex2var_ps(t0, even, t1), b = _mm512_permutex2var_ps(t0, odd, t1);
      const __m512 c = _mm512_permutex2var_ps(u0, even, u1), d = _mm512_permutex2var_ps(u0, odd, u1);
      const __m512i ia = _mm512_add_epi32(_mm512_set1_epi32(2 * oh * W + 2 * ow0), even);
      __m512 best = a;
      __m512i bi = ia;
      __mmask16 gt = _mm512_cmp_ps_mask(b, best, _CMP_GT_OQ);
      best = _mm512_mask_blend_ps(gt, best, b);
      bi = _mm512_mask_blend_epi32(gt, bi, _mm512_add_epi32(ia, _mm512_set1_epi32(1)));
      gt = _mm512_cmp_ps_mask(c, best, _CMP_GT_OQ);
      best = _mm512_mask_blend_ps(gt, best, c);
      bi = _mm512_mask_blend_epi32(gt, bi, _mm512_add_epi32(ia, _mm512_set1_epi32(W)));
      gt = _mm512_cmp_ps_mask(d, best, _CMP_GT_OQ);
      best = _mm512_mask_blend_ps(gt, best, d);
      bi = _mm512_mask_blend_epi32(gt, bi, _mm512_add_epi32(ia, _mm512_set1_epi32(W + 1)));
      const __mmask16 mo = lanes(n);
      _mm512_mask_storeu_ps(out + static_cast<size_t>(oh) * OW + ow0, mo, best);
      _mm512_mask_storeu_epi32(arg + static_cast<size_t>(oh) * OW + ow0, mo, bi);
    }
  }
}

// The backward of the same windows when they tile the plane (H = 2·OH, W = 2·OW), 16 windows at a
// time: each window's four input gradients are written once, the output gradient at its argmax
// and 0 at the other three, instead of zeroing dx and scattering into it. The gradient written
// is 0 + g, as the scatter's sum, so a −0 lands as +0 in both. On an Intel Xeon the pool's
// backward went from 5.9% to 5.5% of a dense SimpleCNN step's samples: with AVX-512 the fill and
// scatter were already close to the cost of writing dx (the AVX2 path gained 3×, below).
void max_unpool2x2_plane(int W, int OH, int OW, const float* dy, const int32_t* arg, float* dx) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i one = _mm512_set1_epi32(1), w0 = _mm512_set1_epi32(W), w1 = _mm512_set1_epi32(W + 1);
  // Interleaving (even, odd) columns into a window row: lanes 0..15, then 16..31.
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
  for (int oh = 0; oh < OH; ++oh) {
    float* top = dx + static_cast<size_t>(2 * oh) * W;
    float* bottom = top + W;
    for (int ow0 = 0; ow0 < OW; ow0 += 16) {
      const int n = std::min(16, OW - ow0);
      const __mmask16 m = lanes(n), m0 = lanes(2 * n), m1 = lanes(2 * n - 16);
      const size_t o = static_cast<size_t>(oh) * OW + ow0;
      const __m512 g = _mm512_add_ps(_mm512_setzero_ps(), _mm512_maskz_loadu_ps(m, dy + o));
      // Offset of the argmax inside its window: 0, 1 (top row), W, W + 1 (bottom row).
      const __m512i base = _mm512_add_epi32(_mm512_set1_epi32(2 * oh * W + 2 * ow0), even);
      const __m512i at = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(m, arg + o), base);
      auto pick = [&](__m512i which) {
        return _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(at, which), g);
      };
      auto store_row = [&](float* row, __m512 ev, __m512 od) {
        _mm512_mask_storeu_ps(row + 2 * ow0, m0, _mm512_permutex2var_ps(ev, lo, od));
        _mm512_mask_storeu_ps(row + 2 * ow0 + 16, m1, _mm512_permutex2var_ps(ev, hi, od));
      };
      store_row(top, pick(_mm512_setzero_si512()), pick(one));
      store_row(bottom, pick(w0), pick(w1));
    }
  }
}
#elif defined(ST_HAVE_SIMD)
// The same with 8 outputs at a time: shuffles split 16 input floats into even and odd columns.
void max_pool2x2_plane(int H, int W, int OH, int OW, const float* in, float* out, int32_t* arg) {
  (void)H;
  const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  auto split = [](__m256 lo, __m256 hi, __m256& ev, __m256& od) {
    ev = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0x88)), 0xD8));
    od = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0xDD)), 0xD8));
  };
  auto take = [](__m256 cand, __m256i cand_i, __m256& best, __m256i& bi) {
    const __m256 gt = _mm256_cmp_ps(cand, best, _CMP_GT_OQ);
    best = _mm256_blendv_ps(best, cand, gt);
    bi = _mm256_blendv_epi8(bi, cand_i, _mm256_castps_si256(gt));
  };
  for (int oh = 0; oh < OH; ++oh) {
    const float* r0 = in + static_cast<size_t>(2 * oh) * W;
    const float* r1 = r0 + W;
    for (int ow0 = 0; ow0 < OW; ow0 += 8) {
      const int n = std::min(8, OW - ow0);
      __m256 a, b, c, d;
      if (n == 8) {
        split(vloadu(r0 + 2 * ow0), vloadu(r0 + 2 * ow0 + 8), a, b);
        split(vloadu(r1 + 2 * ow0), vloadu(r1 + 2 * ow0 + 8), c, d);
      } else {
        const vmask m0 = lanes(2 * n), m1 = lanes(2 * n - 8);
        split(vloadu(m0, r0 + 2 * ow0), vloadu(m1, r0 + 2 * ow0 + 8), a, b);
        split(vloadu(m0, r1 + 2 * ow0), vloadu(m1, r1 + 2 * ow0 + 8), c, d);
      }
      const __m256i ia = _mm256_add_epi32(_mm256_set1_epi32(2 * oh * W + 2 * ow0), even);
      __m256 best = a;
      __m256i bi = ia;
      take(b, _mm256_add_epi32(ia, _mm256_set1_epi32(1)), best, bi);
      take(c, _mm256_add_epi32(ia, _mm256_set1_epi32(W)), best, bi);
      take(d, _mm256_add_epi32(ia, _mm256_set1_epi32(W + 1)), best, bi);
      vstoreu_n(out + static_cast<size_t>(oh) * OW + ow0, n, best);  // no masked stores (simd.h)
      vistoreu_n(arg + static_cast<size_t>(oh) * OW + ow0, n, bi);
    }
  }
}

// The backward of the same windows when they tile the plane (H = 2·OH, W = 2·OW): each window's four
// input gradients are written once, the output gradient at its argmax and 0 at the other three,
// instead of zeroing dx and scattering into it (which took 3× as long on SimpleCNN's pools). The
// gradient written is 0 + g, as the scatter's sum, so a −0 lands as +0 in both.
void max_unpool2x2_plane(int W, int OH, int OW, const float* dy, const int32_t* arg, float* dx) {
  const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  const __m256i one = _mm256_set1_epi32(1), w0 = _mm256_set1_epi32(W), w1 = _mm256_set1_epi32(W + 1);
  for (int oh = 0; oh < OH; ++oh) {
    float* top = dx + static_cast<size_t>(2 * oh) * W;
    float* bottom = top + W;
    for (int ow0 = 0; ow0 < OW; ow0 += 8) {
      const int n = std::min(8, OW - ow0);
      const size_t o = static_cast<size_t>(oh) * OW + ow0;
      __m256 g;
      __m256i at;
      if (n == 8) {
        g = vloadu(dy + o);
        at = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(arg + o));
      } else {
        const vmask m = lanes(n);
        g = vloadu(m, dy + o);
        at = _mm256_maskload_epi32(arg + o, m);
      }
      g = _mm256_add_ps(_mm256_setzero_ps(), g);
      // Offset of the argmax inside its window: 0, 1 (top row), W, W + 1 (bottom row).
      at = _mm256_sub_epi32(at, _mm256_add_epi32(_mm256_set1_epi32(2 * oh * W + 2 * ow0), even));
      auto pick = [&](__m256i which) {
        return _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(at, which)));
      };
      // Interleave (even, odd) columns: lanes 0..7 and 8..15 of the window row.
      auto store_row = [&](float* row, __m256 ev, __m256 od) {
        const __m256 lo = _mm256_unpacklo_ps(ev, od), hi = _mm256_unpackhi_ps(ev, od);
        vstoreu_n(row + 2 * ow0, 2 * n, _mm256_permute2f128_ps(lo, hi, 0x20));
        if (n > 4) vstoreu_n(row + 2 * ow0 + 8, 2 * n - 8, _mm256_permute2f128_ps(lo, hi, 0x31));
      };
      store_row(top, pick(_mm256_setzero_si256()), pick(one));
      store_row(bottom, pick(w0), pick(w1));
    }
  }
}
#endif

}  // namespace

void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int32_t* argmax) {
  const int OH = s.OH(), OW = s.OW();
  const long long planes = static_cast<long long>(s.N) * s.C;
  const size_t in_plane = static_cast<size_t>(s.H) * s.W, out_plane = static_cast<size_t>(OH) * OW;
#if defined(ST_HAVE_SIMD)
  if (is_2x2_stride2(s)) {
    const int H = s.H, W = s.W;
    parallel_for(planes, worth_parallel(planes * in_plane, kParallelMinElems), [=](int64_t p) {
      max_pool2x2_plane(H, W, OH, OW, x + p * in_plane, y + p * out_plane, argmax + p * out_plane);
    });
    return;
  }
#endif
  parallel_for(planes, worth_parallel(planes * in_plane, kParallelMinElems), [=](int64_t p) {
    const float* in = x + p * in_plane;
    float* out = y + p * out_plane;
    int32_t* arg = argmax + p * out_plane;
    for (int oh = 0; oh < OH; ++oh) {
      int h0, h1;
      pool_window(oh, s.stride_h, s.pad_h, s.KH, s.H, h0, h1);
      for (int ow = 0; ow < OW; ++ow) {
        int w0, w1;
        pool_window(ow, s.stride_w, s.pad_w, s.KW, s.W, w0, w1);
        assert(h0 < h1 && w0 < w1 && "pooling window lies entirely in the padding");
        int best_idx;
        out[oh * OW + ow] = window_max(in, s.W, h0, h1, w0, w1, best_idx);
        arg[oh * OW + ow] = best_idx;
      }
    }
  });
}

void max_pool2d_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax, float* dx) {
  const int OH = s.OH(), OW = s.OW();
  const long long planes = static_cast<long long>(s.N) * s.C;
  const size_t in_plane = static_cast<size_t>(s.H) * s.W, out_plane = static_cast<size_t>(OH) * OW;
#if defined(ST_HAVE_SIMD)
  if (is_2x2_stride2(s) && s.H == 2 * OH && s.W == 2 * OW) {
    const int W = s.W;
    parallel_for(planes, worth_parallel(planes * in_plane, kParallelMinElems), [=](int64_t p) {
      max_unpool2x2_plane(W, OH, OW, dy + p * out_plane, argmax + p * out_plane, dx + p * in_plane);
    });
    return;
  }
#endif
  parallel_for(planes, worth_parallel(planes * in_plane, kParallelMinElems), [=](int64_t p) {
    float* d = dx + p * in_plane;
    const float* g = dy + p * out_plane;
    const int32_t* arg = argmax + p * out_plane;
    std::fill(d, d + in_plane, 0.0f);
    for (size_t o = 0; o < out_plane; ++o) d[arg[o]] += g[o];
  });
}

void avg_pool2d_forward(const Pool2dShape& s, const float* x, float* y) {
  const int OH = s.OH(), OW = s.OW();
  const long long planes = static_cast<long long>(s.N) * s.C;
  const size_t in_plane = static_cast<size_t>(s.H) * s.W, out_plane = static_cast<size_t>(OH) * OW;
  const float inv_area = 1.0f / static_cast<float>(s.KH * s.KW);
  parallel_for(planes, worth_parallel(planes * in_plane, kParallelMinElems), [=](int64_t p) {
    const float* in = x + p * in_plane;
    float* out = y + p * out_plane;
    for (int oh = 0; oh < OH; ++oh) {
      int h0, h1;
      pool_window(oh, s.stride_h, s.pad_h, s.KH, s.H, h0, h1);
      for (int ow = 0; ow < OW; ++ow) {
        int w0, w1;
        pool_window(ow, s.stride_w, s.pad_w, s.KW, s.W, w0, w1);
        float acc = 0.0f;
        for (int ih = h0; ih < h1; ++ih)
          for (int iw = w0; iw < w1; ++iw) acc += in[ih * s.W + iw];
        out[oh * OW + ow] = acc * inv_area;
      }
    }
  });
}

void avg_pool2d_backward(const Pool2dShape& s, const float* dy, float* dx) {
  const int OH = s.OH(), OW = s.OW();
  const long long planes = static_cast<long long>(s.N) * s.C;
  const size_t in_plane = static_cast<size_t>(s.H) * s.W, out_plane = static_cast<size_t>(OH) * OW;
  const float inv_area = 1.0f / static_cast<float>(s.KH * s.KW);
  parallel_for(planes, worth_parallel(planes * in_plane, kParallelMinElems), [=](int64_t p) {
    float* d = dx + p * in_plane;
    const float* g = dy + p * out_plane;
    std::fill(d, d + in_plane, 0.0f);
    for (int oh = 0; oh < OH; ++oh) {
      int h0, h1;
      pool_window(oh, s.stride_h, s.pad_h, s.KH, s.H, h0, h1);
      for (int ow = 0; ow < OW; ++ow) {
        int w0, w1;
        pool_window(ow, s.stride_w, s.pad_w, s.KW, s.W, w0, w1);
        const float share = g[oh * OW + ow] * inv_area;
        for (int ih = h0; ih < h1; ++ih)
          for (int iw = w0; iw < w1; ++iw) d[ih * s.W + iw] += share;
      }
    }
  });
}

}  // namespace st::kernels::ST_ISA_NS
