// The few vector operations the kernels need, for the widest float vector of the build's target:
// AVX-512 (16 lanes), AVX2+FMA (8 lanes), NEON (4 lanes: aarch64, or 32-bit ARM with -mfpu=neon*),
// or a plain scalar "vector" the compiler may vectorise itself (an x86-64 build without AVX2).
//
// fma is one rounding wherever the target has a fused multiply-add, and two where it has none, in
// every path and every kernel alike: a fused and an unfused route through the kernels then give
// bitwise the same result. (Left to `c += a * b`, GCC contracts some loops into FMAs and not others.)
#pragma once
#include <cstdint>

#include "kernels/activation.h"
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

// Marks the body of a hot loop in the compiler's assembly output, for llvm-mca
// (tools/kernel-mca.sh compiles with -DDNN_MCA_MARKERS -S). Empty in every real build.
#if defined(DNN_MCA_MARKERS) && defined(__aarch64__)
#define DNN_MCA_BEGIN(name) asm volatile("// LLVM-MCA-BEGIN " name)
#define DNN_MCA_END(name) asm volatile("// LLVM-MCA-END " name)
#elif defined(DNN_MCA_MARKERS)
#define DNN_MCA_BEGIN(name) asm volatile("@ LLVM-MCA-BEGIN " name)
#define DNN_MCA_END(name) asm volatile("@ LLVM-MCA-END " name)
#else
#define DNN_MCA_BEGIN(name) static_cast<void>(0)
#define DNN_MCA_END(name) static_cast<void>(0)
#endif

namespace dnn {
namespace kernels {
namespace simd {

#if defined(__AVX512F__)
using Vec = __m512;
constexpr int kWidth = 16;
inline Vec zero() { return _mm512_setzero_ps(); }
inline Vec set1(float x) { return _mm512_set1_ps(x); }
inline Vec load(const float* p) { return _mm512_load_ps(p); }  // 64-byte aligned
inline Vec loadu(const float* p) { return _mm512_loadu_ps(p); }
inline void storeu(float* p, Vec v) { _mm512_storeu_ps(p, v); }
inline Vec fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
// The first n (0 <= n <= width) lanes; loads give zeros past n, stores leave memory past n untouched.
inline Vec loadu_n(const float* p, int n) { return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p); }
inline void storeu_n(float* p, Vec v, int n) { _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), v); }
// A set of lanes (lane_bits: bit i is lane i). loadu_masked loads the set's lanes from p + lane and
// gives zeros elsewhere; lanes outside the set are never read, so p may point before the data.
using LaneMask = __mmask16;
inline LaneMask lane_bits(unsigned bits) { return static_cast<__mmask16>(bits); }  // bit i: lane i
inline Vec loadu_masked(const float* p, LaneMask m) { return _mm512_maskz_loadu_ps(m, p); }
inline Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
inline Vec sub(Vec a, Vec b) { return _mm512_sub_ps(a, b); }
inline Vec fnma(Vec a, Vec b, Vec c) { return _mm512_fnmadd_ps(a, b, c); }  // c - a * b
inline Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
inline Vec max(Vec a, Vec b) { return _mm512_max_ps(a, b); }
inline Vec min(Vec a, Vec b) { return _mm512_min_ps(a, b); }
// Through memory: GCC 12's _mm512_reduce_add_ps trips -Wuninitialized in its own header.
// even = p[0], p[2], ..., odd = p[1], p[3], ... over 2 * kWidth floats.
inline void deinterleave2(Vec a, Vec b, Vec& even, Vec& odd) {
  const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  even = _mm512_permutex2var_ps(a, ie, b);
  odd = _mm512_permutex2var_ps(a, io, b);
}
inline void deinterleave2(const float* p, Vec& even, Vec& odd) { deinterleave2(loadu(p), loadu(p + 16), even, odd); }
// (a1, ..., a15, b0): the pair shifted down by one lane.
inline Vec shift_in1(Vec a, Vec b) {
  return _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(b), _mm512_castps_si512(a), 1));
}
inline float hsum(Vec v) {
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  for (int w = 8; w > 0; w /= 2)
    for (int i = 0; i < w; ++i) t[i] += t[i + w];
  return t[0];
}
#elif defined(__AVX2__) && defined(__FMA__)
using Vec = __m256;
constexpr int kWidth = 8;
inline Vec zero() { return _mm256_setzero_ps(); }
inline Vec set1(float x) { return _mm256_set1_ps(x); }
inline Vec load(const float* p) { return _mm256_load_ps(p); }  // 32-byte aligned
inline Vec loadu(const float* p) { return _mm256_loadu_ps(p); }
inline void storeu(float* p, Vec v) { _mm256_storeu_ps(p, v); }
inline Vec fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
// The first n (0 <= n <= width) lanes; loads give zeros past n, stores leave memory past n untouched.
inline __m256i lane_mask(int n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }
inline Vec loadu_n(const float* p, int n) { return _mm256_maskload_ps(p, lane_mask(n)); }
inline void storeu_n(float* p, Vec v, int n) { _mm256_maskstore_ps(p, lane_mask(n), v); }
using LaneMask = __m256i;
inline LaneMask lane_bits(unsigned bits) {
  const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(static_cast<int>(bits)), bit), bit);
}
inline Vec loadu_masked(const float* p, LaneMask m) { return _mm256_maskload_ps(p, m); }
inline Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
inline Vec sub(Vec a, Vec b) { return _mm256_sub_ps(a, b); }
inline Vec fnma(Vec a, Vec b, Vec c) { return _mm256_fnmadd_ps(a, b, c); }  // c - a * b
inline Vec mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
inline Vec max(Vec a, Vec b) { return _mm256_max_ps(a, b); }
inline Vec min(Vec a, Vec b) { return _mm256_min_ps(a, b); }
inline void deinterleave2(Vec a, Vec b, Vec& even, Vec& odd) {
  // Within 128-bit lanes, then fix the lane order: (a0 a2 b0 b2 | a4 a6 b4 b6) -> (a0 a2 a4 a6 b0 ...).
  even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
  odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
}
inline void deinterleave2(const float* p, Vec& even, Vec& odd) { deinterleave2(loadu(p), loadu(p + 8), even, odd); }
// (a1, ..., a7, b0): the pair shifted down by one lane.
inline Vec shift_in1(Vec a, Vec b) {
  const __m256 mid = _mm256_permute2f128_ps(a, b, 0x21);  // (a4..a7, b0..b3)
  return _mm256_castsi256_ps(_mm256_alignr_epi8(_mm256_castps_si256(mid), _mm256_castps_si256(a), 4));
}
inline float hsum(Vec v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#elif defined(__ARM_NEON)
using Vec = float32x4_t;
constexpr int kWidth = 4;
inline Vec zero() { return vdupq_n_f32(0.f); }
inline Vec set1(float x) { return vdupq_n_f32(x); }
inline Vec load(const float* p) { return vld1q_f32(p); }
inline Vec loadu(const float* p) { return vld1q_f32(p); }
inline void storeu(float* p, Vec v) { vst1q_f32(p, v); }
#if defined(__aarch64__) || defined(__ARM_FEATURE_FMA)
inline Vec fma(Vec a, Vec b, Vec c) { return vfmaq_f32(c, a, b); }
inline Vec fnma(Vec a, Vec b, Vec c) { return vfmsq_f32(c, a, b); }  // c - a * b
#else  // ARMv7 NEON without VFPv4: no fused form exists, so nothing else fuses either
inline Vec fma(Vec a, Vec b, Vec c) { return vmlaq_f32(c, a, b); }
inline Vec fnma(Vec a, Vec b, Vec c) { return vmlsq_f32(c, a, b); }
#endif
// Lane by lane into a register: lanes outside [0, n) are never touched in memory.
inline Vec loadu_n(const float* p, int n) {
  Vec a = zero();
  if (n >= 4) return vld1q_f32(p);
  if (n > 0) a = vld1q_lane_f32(p, a, 0);
  if (n > 1) a = vld1q_lane_f32(p + 1, a, 1);
  if (n > 2) a = vld1q_lane_f32(p + 2, a, 2);
  return a;
}
inline void storeu_n(float* p, Vec v, int n) {
  if (n >= 4) return vst1q_f32(p, v);
  if (n > 0) vst1q_lane_f32(p, v, 0);
  if (n > 1) vst1q_lane_f32(p + 1, v, 1);
  if (n > 2) vst1q_lane_f32(p + 2, v, 2);
}
using LaneMask = unsigned;
inline LaneMask lane_bits(unsigned bits) { return bits; }
inline Vec loadu_masked(const float* p, LaneMask m) {
  if (m == 15) return vld1q_f32(p);
  Vec a = zero();
  if (m & 1) a = vld1q_lane_f32(p, a, 0);
  if (m & 2) a = vld1q_lane_f32(p + 1, a, 1);
  if (m & 4) a = vld1q_lane_f32(p + 2, a, 2);
  if (m & 8) a = vld1q_lane_f32(p + 3, a, 3);
  return a;
}
inline Vec add(Vec a, Vec b) { return vaddq_f32(a, b); }
inline Vec sub(Vec a, Vec b) { return vsubq_f32(a, b); }
inline Vec mul(Vec a, Vec b) { return vmulq_f32(a, b); }
inline Vec max(Vec a, Vec b) { return vmaxq_f32(a, b); }
inline Vec min(Vec a, Vec b) { return vminq_f32(a, b); }
inline void deinterleave2(Vec a, Vec b, Vec& even, Vec& odd) {
  const float32x4x2_t u = vuzpq_f32(a, b);
  even = u.val[0];
  odd = u.val[1];
}
inline void deinterleave2(const float* p, Vec& even, Vec& odd) {
  const float32x4x2_t u = vld2q_f32(p);
  even = u.val[0];
  odd = u.val[1];
}
// (a1, a2, a3, b0): the pair shifted down by one lane.
inline Vec shift_in1(Vec a, Vec b) { return vextq_f32(a, b, 1); }
inline float hsum(Vec v) {  // (v0 + v1) + (v2 + v3), as the portable path sums
  const float32x2_t s = vpadd_f32(vget_low_f32(v), vget_high_f32(v));
  return vget_lane_f32(vpadd_f32(s, s), 0);
}
#else
// Portable fallback: a 4-lane struct; loops over it are simple enough for auto-vectorisation.
struct Vec {
  float v[4];
};
constexpr int kWidth = 4;
inline Vec zero() { return Vec{{0.f, 0.f, 0.f, 0.f}}; }
inline Vec set1(float x) { return Vec{{x, x, x, x}}; }
inline Vec loadu(const float* p) { return Vec{{p[0], p[1], p[2], p[3]}}; }
inline Vec load(const float* p) { return loadu(p); }
inline void storeu(float* p, Vec a) {
  for (int i = 0; i < 4; ++i) p[i] = a.v[i];
}
inline Vec loadu_n(const float* p, int n) {
  Vec a = zero();
  for (int i = 0; i < n; ++i) a.v[i] = p[i];
  return a;
}
inline void storeu_n(float* p, Vec a, int n) {
  for (int i = 0; i < n; ++i) p[i] = a.v[i];
}
using LaneMask = unsigned;
inline LaneMask lane_bits(unsigned bits) { return bits; }
inline Vec loadu_masked(const float* p, LaneMask m) {
  Vec a = zero();
  for (int i = 0; i < 4; ++i)
    if (m >> i & 1) a.v[i] = p[i];
  return a;
}
#if defined(__FP_FAST_FMAF)  // the target has an FMA instruction: always use it
inline Vec fma(Vec a, Vec b, Vec c) {
  for (int i = 0; i < 4; ++i) c.v[i] = __builtin_fmaf(a.v[i], b.v[i], c.v[i]);
  return c;
}
inline Vec fnma(Vec a, Vec b, Vec c) {  // c - a * b
  for (int i = 0; i < 4; ++i) c.v[i] = __builtin_fmaf(-a.v[i], b.v[i], c.v[i]);
  return c;
}
#else  // none: multiply, round, add, round (nothing can contract without the instruction)
inline Vec fma(Vec a, Vec b, Vec c) {
  for (int i = 0; i < 4; ++i) c.v[i] += a.v[i] * b.v[i];
  return c;
}
inline Vec fnma(Vec a, Vec b, Vec c) {  // c - a * b
  for (int i = 0; i < 4; ++i) c.v[i] -= a.v[i] * b.v[i];
  return c;
}
#endif
inline Vec add(Vec a, Vec b) {
  for (int i = 0; i < 4; ++i) a.v[i] += b.v[i];
  return a;
}
inline Vec mul(Vec a, Vec b) {
  for (int i = 0; i < 4; ++i) a.v[i] *= b.v[i];
  return a;
}
inline Vec sub(Vec a, Vec b) {
  for (int i = 0; i < 4; ++i) a.v[i] -= b.v[i];
  return a;
}
inline void deinterleave2(Vec a, Vec b, Vec& even, Vec& odd) {
  for (int i = 0; i < 2; ++i) {
    even.v[i] = a.v[2 * i];
    odd.v[i] = a.v[2 * i + 1];
    even.v[i + 2] = b.v[2 * i];
    odd.v[i + 2] = b.v[2 * i + 1];
  }
}
inline void deinterleave2(const float* p, Vec& even, Vec& odd) { deinterleave2(loadu(p), loadu(p + 4), even, odd); }
inline Vec shift_in1(Vec a, Vec b) { return Vec{{a.v[1], a.v[2], a.v[3], b.v[0]}}; }
inline Vec max(Vec a, Vec b) {
  for (int i = 0; i < 4; ++i) a.v[i] = a.v[i] > b.v[i] ? a.v[i] : b.v[i];
  return a;
}
inline Vec min(Vec a, Vec b) {
  for (int i = 0; i < 4; ++i) a.v[i] = a.v[i] < b.v[i] ? a.v[i] : b.v[i];
  return a;
}
inline float hsum(Vec a) { return (a.v[0] + a.v[1]) + (a.v[2] + a.v[3]); }
#endif

// Lanes [lo, hi) (0 <= lo <= hi <= kWidth).
inline unsigned lane_range_bits(int lo, int hi) { return ((1u << hi) - 1) & ~((1u << lo) - 1); }
inline LaneMask lane_range(int lo, int hi) { return lane_bits(lane_range_bits(lo, hi)); }

// Short copies (a strip or so): whole vectors with masked tails, no library call per run.
inline void copy_floats(const float* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; i += kWidth) {
    const int m = n - i < kWidth ? static_cast<int>(n - i) : kWidth;
    storeu_n(dst + i, loadu_n(src + i, m), m);
  }
}
inline void zero_floats(float* dst, int64_t n) {
  for (int64_t i = 0; i < n; i += kWidth) storeu_n(dst + i, zero(), n - i < kWidth ? static_cast<int>(n - i) : kWidth);
}

// A kWidth x kWidth transpose in place: lane j of r[i] becomes lane i of r[j].
#if defined(__AVX512F__)
inline void transpose(Vec r[16]) {
  // Pairs of rows interleaved by 32, then 64 bits (inside 128-bit blocks), then the blocks moved.
  Vec t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  auto lo64 = [](Vec a, Vec b) { return _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a), _mm512_castps_pd(b))); };
  auto hi64 = [](Vec a, Vec b) { return _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a), _mm512_castps_pd(b))); };
  for (int i = 0; i < 16; i += 4) {  // u[i + c], block L: column 4L + c of rows i..i+3
    u[i] = lo64(t[i], t[i + 2]);
    u[i + 1] = hi64(t[i], t[i + 2]);
    u[i + 2] = lo64(t[i + 1], t[i + 3]);
    u[i + 3] = hi64(t[i + 1], t[i + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    const Vec v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44), v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);
    const Vec w0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44), w1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
    r[c] = _mm512_shuffle_f32x4(v0, w0, 0x88);
    r[4 + c] = _mm512_shuffle_f32x4(v0, w0, 0xDD);
    r[8 + c] = _mm512_shuffle_f32x4(v1, w1, 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(v1, w1, 0xDD);
  }
}
#else
inline void transpose(Vec r[kWidth]) {  // through memory: these builds do not use it on a hot path
  float t[kWidth][kWidth], col[kWidth];
  for (int i = 0; i < kWidth; ++i) storeu(t[i], r[i]);
  for (int j = 0; j < kWidth; ++j) {
    for (int i = 0; i < kWidth; ++i) col[i] = t[i][j];
    r[j] = loadu(col);
  }
}
#endif

// The fused activations on a whole vector (Sigmoid has no vector form here: callers use finish_row).
inline Vec activate(ActKind kind, Vec v, Vec lo, Vec hi, Vec alpha) {
  switch (kind) {
    case ActKind::Relu: return max(v, zero());
    case ActKind::Clip: return min(max(v, lo), hi);
    case ActKind::LeakyRelu: return fma(alpha, min(v, zero()), max(v, zero()));
    case ActKind::HardSwish: return mul(v, min(max(fma(v, set1(1.f / 6.f), set1(0.5f)), zero()), set1(1.f)));
    default: return v;
  }
}

}  // namespace simd
}  // namespace kernels
}  // namespace dnn
