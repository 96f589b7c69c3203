// The few vector operations the kernels need, for the widest float vector of the build's target:
// AVX-512 (16 lanes), AVX2+FMA (8 lanes), or a plain scalar "vector" the compiler may vectorise
// itself (NEON on aarch64, or an x86-64 build without AVX2).
#pragma once
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
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
inline Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
inline Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
// Through memory: GCC 12's _mm512_reduce_add_ps trips -Wuninitialized in its own header.
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
inline Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
inline Vec mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
inline float hsum(Vec v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
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
inline Vec fma(Vec a, Vec b, Vec c) {
  for (int i = 0; i < 4; ++i) c.v[i] += a.v[i] * b.v[i];
  return c;
}
inline Vec add(Vec a, Vec b) {
  for (int i = 0; i < 4; ++i) a.v[i] += b.v[i];
  return a;
}
inline Vec mul(Vec a, Vec b) {
  for (int i = 0; i < 4; ++i) a.v[i] *= b.v[i];
  return a;
}
inline float hsum(Vec a) { return (a.v[0] + a.v[1]) + (a.v[2] + a.v[3]); }
#endif

}  // namespace simd
}  // namespace kernels
}  // namespace dnn
