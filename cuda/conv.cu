// cuda/conv.cu — convolution layouts (im2col/col2im, batch variants, CNP<->NCHW reorders), the
// dense conv as im2col + one SGEMM over the batch, and max/avg pooling (contracts in cuda/conv.h).
//   im2col:  one thread per column-matrix element; consecutive threads write consecutive output
//            positions (coalesced stores, reads along an input row).
//   col2im:  one thread per input pixel gathers the ≤ KH·KW column entries that came from it, in
//            (kh, kw) order: no atomics, no zero-fill pass, deterministic.
//   pooling: one thread per output element (forward) or per input pixel (backward: gathers over
//            the windows that contain it, in row-major window order, the order of the CPU's
//            scatter; max pooling's backward is then bitwise the CPU's, avg pooling's up to
//            whether either compiler fuses the multiply-add).
// The shape structs' member functions are host code, so kernels take OH/OW as arguments.
// Reference: kernels/conv.cpp, kernels/sparse_conv.cpp, kernels/pool.cpp.
// Tests: tests/cuda/test_conv.cpp.
#include "cuda/compat.h"

#include <cmath>
#include <cstdint>

#include "cuda/conv.h"
#include "cuda/dense.h"
#include "cuda/launch.h"
#include "cuda/runtime.h"

namespace st::cuda {
namespace {

using launch::blocks_for;
using launch::current_stream;
using launch::kThreads;
using kernels::pool_window;

// cols (C·KH·KW, images·P) from x (images, C, H, W); column n·P + p is output position p of
// image n (images == 1: the per-image layout).
__global__ void im2col_kernel(Conv2dShape s, int OH, int OW, int images, const float* __restrict__ x,
                              float* __restrict__ cols) {
  const int64_t P = static_cast<int64_t>(OH) * OW, NP = P * images;
  const int64_t total = static_cast<int64_t>(s.C) * s.KH * s.KW * NP;
  ST_GRID_STRIDE(i, total) {
    const int64_t r = i / NP, q = i - r * NP;
    const int64_t n = q / P, p = q - n * P;
    const int kw = static_cast<int>(r % s.KW), kh = static_cast<int>((r / s.KW) % s.KH);
    const int64_t c = r / (static_cast<int64_t>(s.KW) * s.KH);
    const int oh = static_cast<int>(p / OW), ow = static_cast<int>(p % OW);
    const int ih = oh * s.stride_h - s.pad_h + kh, iw = ow * s.stride_w - s.pad_w + kw;
    float v = 0.f;  // padding reads as 0
    if (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W)
      v = x[((n * s.C + c) * s.H + ih) * s.W + iw];
    cols[i] = v;
  }
}

// dx (images, C, H, W) = Σ of the column entries each pixel was copied to (overwrites).
__global__ void col2im_kernel(Conv2dShape s, int OH, int OW, int images, const float* __restrict__ cols,
                              float* __restrict__ dx) {
  const int64_t P = static_cast<int64_t>(OH) * OW, NP = P * images;
  const int64_t total = static_cast<int64_t>(images) * s.C * s.H * s.W;
  ST_GRID_STRIDE(i, total) {
    const int iw = static_cast<int>(i % s.W), ih = static_cast<int>((i / s.W) % s.H);
    const int64_t nc = i / (static_cast<int64_t>(s.W) * s.H);
    const int64_t c = nc % s.C, n = nc / s.C;
    const float* col = cols + n * P;
    float acc = 0.f;
    for (int kh = 0; kh < s.KH; ++kh) {
      const int th = ih + s.pad_h - kh;  // = oh · stride_h for the output row that read (ih, kh)
      if (th < 0) break;                 // only decreases with kh
      if (th % s.stride_h != 0 || th / s.stride_h >= OH) continue;
      const int oh = th / s.stride_h;
      for (int kw = 0; kw < s.KW; ++kw) {
        const int tw = iw + s.pad_w - kw;
        if (tw < 0) break;
        if (tw % s.stride_w != 0 || tw / s.stride_w >= OW) continue;
        const int64_t r = (c * s.KH + kh) * s.KW + kw;
        acc += col[r * NP + static_cast<int64_t>(oh) * OW + tw / s.stride_w];
      }
    }
    dx[i] = acc;
  }
}

// y (N, C, P) from a (C, N·P) [+ bias (C)]. Without a bias the value is copied, not `+ 0` (which
// would turn −0 into +0 and differ from the CPU's memcpy).
__global__ void cnp_to_nchw_kernel(int C, int N, int64_t P, const float* __restrict__ a,
                                   const float* __restrict__ bias, float* __restrict__ y) {
  ST_GRID_STRIDE(i, static_cast<int64_t>(N) * C * P) {
    const int64_t p = i % P, nc = i / P;
    const int64_t c = nc % C, n = nc / C;
    const float v = a[(c * N + n) * P + p];
    y[i] = bias ? v + bias[c] : v;
  }
}

// a (C, N·P) from y (N, C, P).
__global__ void nchw_to_cnp_kernel(int C, int N, int64_t P, const float* __restrict__ y,
                                   float* __restrict__ a) {
  ST_GRID_STRIDE(i, static_cast<int64_t>(N) * C * P) {
    const int64_t p = i % P, cn = i / P;
    const int64_t n = cn % N, c = cn / N;
    a[i] = y[(n * C + c) * P + p];
  }
}

// ---- pooling -------------------------------------------------------------------------------

// Pooling windows and the first-maximum scan: kernels/pool.h (pool_window, window_max).

// Output positions [lo, hi] (inclusive, clipped to [0, count)) whose window covers input index i.
__device__ __forceinline__ void covering_outputs(int i, int stride, int pad, int k, int count,
                                                 int& lo, int& hi) {
  const int first = i + pad - k + 1;  // o·stride ≥ first
  lo = first <= 0 ? 0 : (first + stride - 1) / stride;
  hi = (i + pad) / stride;
  if (hi > count - 1) hi = count - 1;
}

// A window lying wholly in the padding (the CPU asserts against it) yields −inf and argmax −1.
__global__ void max_pool_forward_kernel(Pool2dShape s, int OH, int OW, const float* __restrict__ x,
                                        float* __restrict__ y, int32_t* __restrict__ argmax) {
  const int64_t out_plane = static_cast<int64_t>(OH) * OW, in_plane = static_cast<int64_t>(s.H) * s.W;
  ST_GRID_STRIDE(i, static_cast<int64_t>(s.N) * s.C * out_plane) {
    const int64_t plane = i / out_plane, o = i - plane * out_plane;
    const int oh = static_cast<int>(o / OW), ow = static_cast<int>(o % OW);
    int h0, h1, w0, w1;
    pool_window(oh, s.stride_h, s.pad_h, s.KH, s.H, h0, h1);
    pool_window(ow, s.stride_w, s.pad_w, s.KW, s.W, w0, w1);
    const float* in = x + plane * in_plane;
    float best = -INFINITY;
    int best_idx = -1;
    if (h0 < h1 && w0 < w1) best = kernels::window_max(in, s.W, h0, h1, w0, w1, best_idx);
    y[i] = best;
    argmax[i] = best_idx;
  }
}

__global__ void max_pool_backward_kernel(Pool2dShape s, int OH, int OW, const float* __restrict__ dy,
                                         const int32_t* __restrict__ argmax, float* __restrict__ dx) {
  const int64_t out_plane = static_cast<int64_t>(OH) * OW, in_plane = static_cast<int64_t>(s.H) * s.W;
  ST_GRID_STRIDE(i, static_cast<int64_t>(s.N) * s.C * in_plane) {
    const int64_t plane = i / in_plane;
    const int idx = static_cast<int>(i - plane * in_plane);
    const int ih = idx / s.W, iw = idx % s.W;
    int oh0, oh1, ow0, ow1;
    covering_outputs(ih, s.stride_h, s.pad_h, s.KH, OH, oh0, oh1);
    covering_outputs(iw, s.stride_w, s.pad_w, s.KW, OW, ow0, ow1);
    const float* g = dy + plane * out_plane;
    const int32_t* arg = argmax + plane * out_plane;
    float acc = 0.f;
    for (int oh = oh0; oh <= oh1; ++oh)
      for (int ow = ow0; ow <= ow1; ++ow)
        if (arg[oh * OW + ow] == idx) acc += g[oh * OW + ow];
    dx[i] = acc;
  }
}

__global__ void avg_pool_forward_kernel(Pool2dShape s, int OH, int OW, float inv_area,
                                        const float* __restrict__ x, float* __restrict__ y) {
  const int64_t out_plane = static_cast<int64_t>(OH) * OW, in_plane = static_cast<int64_t>(s.H) * s.W;
  ST_GRID_STRIDE(i, static_cast<int64_t>(s.N) * s.C * out_plane) {
    const int64_t plane = i / out_plane, o = i - plane * out_plane;
    const int oh = static_cast<int>(o / OW), ow = static_cast<int>(o % OW);
    int h0, h1, w0, w1;
    pool_window(oh, s.stride_h, s.pad_h, s.KH, s.H, h0, h1);
    pool_window(ow, s.stride_w, s.pad_w, s.KW, s.W, w0, w1);
    const float* in = x + plane * in_plane;
    float acc = 0.f;
    for (int ih = h0; ih < h1; ++ih)
      for (int iw = w0; iw < w1; ++iw) acc += in[ih * s.W + iw];
    y[i] = acc * inv_area;
  }
}

__global__ void avg_pool_backward_kernel(Pool2dShape s, int OH, int OW, float inv_area,
                                         const float* __restrict__ dy, float* __restrict__ dx) {
  const int64_t out_plane = static_cast<int64_t>(OH) * OW, in_plane = static_cast<int64_t>(s.H) * s.W;
  ST_GRID_STRIDE(i, static_cast<int64_t>(s.N) * s.C * in_plane) {
    const int64_t plane = i / in_plane;
    const int idx = static_cast<int>(i - plane * in_plane);
    const int ih = idx / s.W, iw = idx % s.W;
    int oh0, oh1, ow0, ow1;
    covering_outputs(ih, s.stride_h, s.pad_h, s.KH, OH, oh0, oh1);
    covering_outputs(iw, s.stride_w, s.pad_w, s.KW, OW, ow0, ow1);
    const float* g = dy + plane * out_plane;
    float acc = 0.f;
    for (int oh = oh0; oh <= oh1; ++oh)
      for (int ow = ow0; ow <= ow1; ++ow) acc += g[oh * OW + ow] * inv_area;
    dx[i] = acc;
  }
}


#define ST_CONV_LAUNCH(n, kernel, ...)                                             \
  do {                                                                             \
    if ((n) <= 0) return;                                                          \
    ST_LAUNCH(blocks_for(n), kThreads, 0, current_stream(), kernel)(__VA_ARGS__);  \
    ST_CUDA_CHECK_LAUNCH();                                                        \
  } while (0)

int64_t col_rows(const Conv2dShape& s) { return static_cast<int64_t>(s.C) * s.KH * s.KW; }
int64_t out_positions(const Conv2dShape& s) { return static_cast<int64_t>(s.OH()) * s.OW(); }

void im2col_images(const Conv2dShape& s, int images, const float* x, float* cols) {
  const int64_t n = col_rows(s) * out_positions(s) * images;
  ST_CONV_LAUNCH(n, im2col_kernel, s, s.OH(), s.OW(), images, x, cols);
}

void col2im_images(const Conv2dShape& s, int images, const float* cols, float* dx) {
  const int64_t n = static_cast<int64_t>(images) * s.C * s.H * s.W;
  ST_CONV_LAUNCH(n, col2im_kernel, s, s.OH(), s.OW(), images, cols, dx);
}

}  // namespace

void im2col(const Conv2dShape& s, const float* in, float* cols) { im2col_images(s, 1, in, cols); }
void col2im(const Conv2dShape& s, const float* cols, float* in) { col2im_images(s, 1, cols, in); }
void im2col_batch(const Conv2dShape& s, const float* x, float* cols) {
  im2col_images(s, s.N, x, cols);
}
void col2im_batch(const Conv2dShape& s, const float* cols, float* dx) {
  col2im_images(s, s.N, cols, dx);
}

void cnp_to_nchw(int C, int N, int P, const float* a, const float* bias, float* y) {
  const int64_t n = static_cast<int64_t>(N) * C * P;
  ST_CONV_LAUNCH(n, cnp_to_nchw_kernel, C, N, static_cast<int64_t>(P), a, bias, y);
}

void nchw_to_cnp(int C, int N, int P, const float* y, float* a) {
  const int64_t n = static_cast<int64_t>(N) * C * P;
  ST_CONV_LAUNCH(n, nchw_to_cnp_kernel, C, N, static_cast<int64_t>(P), y, a);
}

// Workspace: the batch's columns (K, N·P), then the output in channel-major order (OC, N·P).
size_t conv2d_workspace_floats(const Conv2dShape& s) {
  const int64_t NP = out_positions(s) * s.N;
  return static_cast<size_t>((col_rows(s) + s.OC) * NP);
}

// out (OC, N·P) = w (OC, K) · cols (K, N·P): one GEMM for the whole batch keeps N wide even on
// the small maps of MNIST/CIFAR-sized nets.
void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y,
                    float* workspace) {
  const int K = static_cast<int>(col_rows(s)), P = static_cast<int>(out_positions(s));
  const int NP = P * s.N;
  if (NP == 0 || s.OC == 0) return;
  float* cols = workspace;
  float* out = workspace + static_cast<size_t>(K) * NP;
  cuda::im2col_batch(s, x, cols);
  cuda::sgemm(false, false, s.OC, NP, K, 1.0f, w, K, cols, NP, 0.0f, out, NP);
  cuda::cnp_to_nchw(s.OC, s.N, P, out, b, y);
}

// cols (K, N·P) = wᵀ (K, OC) · dy (OC, N·P); dx = col2im_batch(cols).
void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx,
                          float* workspace) {
  const int K = static_cast<int>(col_rows(s)), P = static_cast<int>(out_positions(s));
  const int NP = P * s.N;
  float* cols = workspace;
  float* dy_cnp = workspace + static_cast<size_t>(K) * NP;
  cuda::nchw_to_cnp(s.OC, s.N, P, dy, dy_cnp);
  cuda::sgemm(true, false, K, NP, s.OC, 1.0f, w, K, dy_cnp, NP, 0.0f, cols, NP);
  cuda::col2im_batch(s, cols, dx);
}

// dw (OC, K) (+)= dy (OC, N·P) · colsᵀ (N·P, K); db (OC) (+)= Σ dy.
void conv2d_backward_weights(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                             float* db, bool accumulate, float* workspace) {
  const int K = static_cast<int>(col_rows(s)), P = static_cast<int>(out_positions(s));
  const int NP = P * s.N;
  float* cols = workspace;
  float* dy_cnp = workspace + static_cast<size_t>(K) * NP;
  cuda::im2col_batch(s, x, cols);
  cuda::nchw_to_cnp(s.OC, s.N, P, dy, dy_cnp);
  cuda::sgemm(false, true, s.OC, K, NP, 1.0f, dy_cnp, NP, cols, NP, accumulate ? 1.0f : 0.0f, dw, K);
  if (db) cuda::bias_grad_channels(s.N, s.OC, P, dy, db, accumulate);
}

void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int32_t* argmax) {
  const int64_t n = static_cast<int64_t>(s.N) * s.C * s.OH() * s.OW();
  ST_CONV_LAUNCH(n, max_pool_forward_kernel, s, s.OH(), s.OW(), x, y, argmax);
}

void max_pool2d_backward(const Pool2dShape& s, const float* dy, const int32_t* argmax, float* dx) {
  const int64_t n = static_cast<int64_t>(s.N) * s.C * s.H * s.W;
  ST_CONV_LAUNCH(n, max_pool_backward_kernel, s, s.OH(), s.OW(), dy, argmax, dx);
}

void avg_pool2d_forward(const Pool2dShape& s, const float* x, float* y) {
  const int64_t n = static_cast<int64_t>(s.N) * s.C * s.OH() * s.OW();
  const float inv_area = 1.0f / static_cast<float>(s.KH * s.KW);
  ST_CONV_LAUNCH(n, avg_pool_forward_kernel, s, s.OH(), s.OW(), inv_area, x, y);
}

void avg_pool2d_backward(const Pool2dShape& s, const float* dy, float* dx) {
  const int64_t n = static_cast<int64_t>(s.N) * s.C * s.H * s.W;
  const float inv_area = 1.0f / static_cast<float>(s.KH * s.KW);
  ST_CONV_LAUNCH(n, avg_pool_backward_kernel, s, s.OH(), s.OW(), inv_area, dy, dx);
}

}  // namespace st::cuda
