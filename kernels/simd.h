// kernels/simd.h — the vector layer of the CPU kernels, one per instruction set. Included only by
// the kernel files that are compiled once per instruction set (kernels/isa.h explains the build);
// each compilation sees the vector type of its own target:
//   AVX-512: vf = __m512 (VL = 16 floats), vmask = __mmask16
//   AVX2+FMA: vf = __m256 (VL = 8 floats),  vmask = __m256i (all-ones lanes)
// and nothing without AVX2 (the portable loops of each file are used there).
//   vzero/vset1/vload (aligned)/vloadu/vstore/vstoreu/vadd/vmul/vfmadd(a, b, c) = a·b + c
//   lanes(n):         lanes [0, n) (none for n <= 0, all for n >= VL)
//   lanes(lo, hi):    lanes [lo, hi) ∩ [0, VL)
//   vloadu(m, p):     masked load, lanes outside m read as 0 and are never touched in memory
//   vstoreu(p, m, v): masked store; vstoreu_n(p, n, v): the first n lanes (plain stores on AVX2)
//   transpose(r):     in-register VL×VL transpose, r[i][j] -> r[j][i] (exact data movement)
//   hsum(d):          lane i of the result = horizontal sum of d[i], a transpose-add tree
//   prefetch(p):      into L1
//   vmax(a, b):       a > b ? a : b (b where either is NaN, as vmaxps)
//   vcmpgt(a, b):     a > b lane by lane (vcmp; false on NaN); vselect(m, a, b) = m ? a : b
//   vi (int32 lanes): vizero/viset1/viselect(m, a, b)/vistoreu(p, v)/vistoreu(p, m, v)
// Everything is defined in the instruction set's own namespace (st::kernels::ST_ISA_NS), so the
// copies compiled for different targets never meet at link time.
#pragma once

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 false positive in the intrinsics
#endif

#define ST_HAVE_SIMD 1

namespace st::kernels::ST_ISA_NS {

#if defined(__AVX512F__)

constexpr int VL = 16;
using vf = __m512;
using vmask = __mmask16;

inline vf vzero() { return _mm512_setzero_ps(); }
inline vf vset1(float a) { return _mm512_set1_ps(a); }
inline vf vload(const float* p) { return _mm512_load_ps(p); }
inline vf vloadu(const float* p) { return _mm512_loadu_ps(p); }
inline vf vloadu(vmask m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
inline void vstore(float* p, vf v) { _mm512_store_ps(p, v); }
inline void vstoreu(float* p, vf v) { _mm512_storeu_ps(p, v); }
inline void vstoreu(float* p, vmask m, vf v) { _mm512_mask_storeu_ps(p, m, v); }
inline vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm512_mul_ps(a, b); }
inline vf vfmadd(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
// a > b ? a : b (b where either is NaN), as vmaxps.
inline vf vmax(vf a, vf b) { return _mm512_max_ps(a, b); }
// Comparisons and selects; vi holds VL int32 lanes.
using vi = __m512i;
using vcmp = __mmask16;
inline vcmp vcmpgt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }  // false on NaN
inline vf vselect(vcmp m, vf a, vf b) { return _mm512_mask_blend_ps(m, b, a); }  // m ? a : b
inline vi vizero() { return _mm512_setzero_si512(); }
inline vi viset1(int32_t a) { return _mm512_set1_epi32(a); }
inline vi viselect(vcmp m, vi a, vi b) { return _mm512_mask_blend_epi32(m, b, a); }
inline void vistoreu(int32_t* p, vi v) { _mm512_storeu_si512(p, v); }
inline void vistoreu(int32_t* p, vmask m, vi v) { _mm512_mask_storeu_epi32(p, m, v); }

inline vmask lanes(int n) {
  if (n <= 0) return 0;
  return n >= 16 ? static_cast<vmask>(0xFFFF) : static_cast<vmask>((1u << n) - 1u);
}
inline vmask lanes(int lo, int hi) {
  lo = lo < 0 ? 0 : lo;
  hi = hi > 16 ? 16 : hi;
  if (hi <= lo) return 0;
  return static_cast<vmask>(((1u << (hi - lo)) - 1u) << lo);
}
// The first n lanes of v (all for n >= VL, none for n <= 0); masked stores are fast with AVX-512.
inline void vstoreu_n(float* p, int n, vf v) { _mm512_mask_storeu_ps(p, lanes(n), v); }
inline void vistoreu_n(int32_t* p, int n, vi v) { _mm512_mask_storeu_epi32(p, lanes(n), v); }

inline void transpose(vf r[16]) {
  vf t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
    r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  // r[4g + j], 128-bit lane l, now holds column 4l + j of rows 4g..4g+3.
  for (int j = 0; j < 4; ++j) {
    const vf u0 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);
    const vf u1 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xDD);
    const vf u2 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
    const vf u3 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xDD);
    t[j] = _mm512_shuffle_f32x4(u0, u2, 0x88);
    t[8 + j] = _mm512_shuffle_f32x4(u0, u2, 0xDD);
    t[4 + j] = _mm512_shuffle_f32x4(u1, u3, 0x88);
    t[12 + j] = _mm512_shuffle_f32x4(u1, u3, 0xDD);
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

// 45 operations for 16 sums.
inline vf hsum(const vf d[16]) {
  vf s[8], q[4], p[2];
  for (int i = 0; i < 8; ++i)
    s[i] = _mm512_add_ps(_mm512_unpacklo_ps(d[2 * i], d[2 * i + 1]),
                         _mm512_unpackhi_ps(d[2 * i], d[2 * i + 1]));
  for (int i = 0; i < 4; ++i) {
    const __m512d a = _mm512_castps_pd(s[2 * i]), b = _mm512_castps_pd(s[2 * i + 1]);
    q[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)),
                         _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
  }
  for (int i = 0; i < 2; ++i)
    p[i] = _mm512_add_ps(_mm512_shuffle_f32x4(q[2 * i], q[2 * i + 1], 0x88),
                         _mm512_shuffle_f32x4(q[2 * i], q[2 * i + 1], 0xDD));
  return _mm512_add_ps(_mm512_shuffle_f32x4(p[0], p[1], 0x88),
                       _mm512_shuffle_f32x4(p[0], p[1], 0xDD));
}

#else  // AVX2 + FMA

constexpr int VL = 8;
using vf = __m256;
using vmask = __m256i;

inline vf vzero() { return _mm256_setzero_ps(); }
inline vf vset1(float a) { return _mm256_set1_ps(a); }
inline vf vload(const float* p) { return _mm256_load_ps(p); }
inline vf vloadu(const float* p) { return _mm256_loadu_ps(p); }
inline vf vloadu(vmask m, const float* p) { return _mm256_maskload_ps(p, m); }
inline void vstore(float* p, vf v) { _mm256_store_ps(p, v); }
inline void vstoreu(float* p, vf v) { _mm256_storeu_ps(p, v); }
// AMD Zen 2 microcodes vmaskmovps stores: 3.7 ns against 0.65 ns for a plain store (measured on an
// EPYC, family 23 model 49). A full mask therefore takes the plain store; for a known count of
// lanes, vstoreu_n avoids the masked store altogether.
inline void vstoreu(float* p, vmask m, vf v) {
  if (_mm256_movemask_ps(_mm256_castsi256_ps(m)) == 0xFF)
    _mm256_storeu_ps(p, v);
  else
    _mm256_maskstore_ps(p, m, v);
}
inline vf vadd(vf a, vf b) { return _mm256_add_ps(a, b); }
inline vf vmul(vf a, vf b) { return _mm256_mul_ps(a, b); }
inline vf vfmadd(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
// a > b ? a : b (b where either is NaN), as vmaxps.
inline vf vmax(vf a, vf b) { return _mm256_max_ps(a, b); }
// Comparisons and selects; vi holds VL int32 lanes.
using vi = __m256i;
using vcmp = __m256;
inline vcmp vcmpgt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }  // false on NaN
inline vf vselect(vcmp m, vf a, vf b) { return _mm256_blendv_ps(b, a, m); }  // m ? a : b
inline vi vizero() { return _mm256_setzero_si256(); }
inline vi viset1(int32_t a) { return _mm256_set1_epi32(a); }
inline vi viselect(vcmp m, vi a, vi b) {
  return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(b), _mm256_castsi256_ps(a), m));
}
inline void vistoreu(int32_t* p, vi v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
inline void vistoreu(int32_t* p, vmask m, vi v) {
  if (_mm256_movemask_ps(_mm256_castsi256_ps(m)) == 0xFF)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
  else
    _mm256_maskstore_epi32(p, m, v);
}
// The first n lanes of v (all for n >= VL, none for n <= 0) in plain stores of 8, 4, 2 and 1 floats.
inline void vstoreu_n(float* p, int n, vf v) {
  if (n >= 8) return _mm256_storeu_ps(p, v);
  __m128 h = _mm256_castps256_ps128(v);
  if (n >= 4) {
    _mm_storeu_ps(p, h);
    h = _mm256_extractf128_ps(v, 1);
    p += 4, n -= 4;
  }
  if (n >= 2) {
    _mm_storel_pi(reinterpret_cast<__m64*>(p), h);
    h = _mm_movehl_ps(h, h);
    p += 2, n -= 2;
  }
  if (n >= 1) _mm_store_ss(p, h);
}
inline void vistoreu_n(int32_t* p, int n, vi v) {
  vstoreu_n(reinterpret_cast<float*>(p), n, _mm256_castsi256_ps(v));  // bits moved, not converted
}

inline vmask lanes(int n) {
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), iota);
}
inline vmask lanes(int lo, int hi) {
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  // lo <= i < hi  <=>  !(lo > i) && (hi > i)
  return _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(lo), iota),
                             _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), iota));
}

inline void transpose(vf r[8]) {
  const vf t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const vf t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const vf t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const vf t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const vf u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const vf u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const vf u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const vf u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// 21 operations for 8 sums.
inline vf hsum(const vf d[8]) {
  vf s[4], q[2];
  for (int i = 0; i < 4; ++i)  // s[i] lanes (per 128-bit half): pairs of d[2i], d[2i+1]
    s[i] = _mm256_add_ps(_mm256_unpacklo_ps(d[2 * i], d[2 * i + 1]),
                         _mm256_unpackhi_ps(d[2 * i], d[2 * i + 1]));
  for (int i = 0; i < 2; ++i) {
    const __m256d a = _mm256_castps_pd(s[2 * i]), b = _mm256_castps_pd(s[2 * i + 1]);
    q[i] = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(a, b)),
                         _mm256_castpd_ps(_mm256_unpackhi_pd(a, b)));
  }
  // q[0] half h lane j: partial sum of d[j] (half h); q[1] the same for d[4 + j].
  return _mm256_add_ps(_mm256_permute2f128_ps(q[0], q[1], 0x20),
                       _mm256_permute2f128_ps(q[0], q[1], 0x31));
}

#endif

inline void prefetch(const float* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }

}  // namespace st::kernels::ST_ISA_NS

#endif  // AVX2 + FMA
