#include "steno_kernels.h"
#include <string.h>
#include <math.h>

// Fully unroll loops over the batch so that per-row accumulators stay in registers.
#if defined(__clang__)
#define STENO_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define STENO_UNROLL _Pragma("GCC unroll 8")
#else
#define STENO_UNROLL
#endif

#if defined(__x86_64__)
#include <immintrin.h>
#define STENO_X86 1
#endif

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exponent = (h >> 10) & 0x1f;
    uint32_t mantissa = h & 0x3ff;
    uint32_t bits;
    if (exponent == 0) {
        if (mantissa == 0) {
            bits = sign;
        } else {  // subnormal: normalize
            exponent = 127 - 15 + 1;
            while ((mantissa & 0x400) == 0) { mantissa <<= 1; exponent--; }
            mantissa &= 0x3ff;
            bits = sign | (exponent << 23) | (mantissa << 13);
        }
    } else if (exponent == 31) {
        bits = sign | 0x7f800000 | (mantissa << 13);
    } else {
        bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static uint16_t float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exponent = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t mantissa = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (mantissa ? 0x200 : 0));
    if (exponent >= 31) return (uint16_t)(sign | 0x7c00);
    if (exponent <= 0) {
        if (exponent < -10) return (uint16_t)sign;
        mantissa |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exponent);
        uint32_t half = mantissa >> shift;
        uint32_t rest = mantissa & ((1u << shift) - 1);
        uint32_t midpoint = 1u << (shift - 1);
        if (rest > midpoint || (rest == midpoint && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)exponent << 10) | (mantissa >> 13);
    uint32_t rest = mantissa & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) half++;
    return (uint16_t)half;
}

void steno_f32_to_f16(const float *src, uint16_t *dst, long count) {
    for (long i = 0; i < count; i++) dst[i] = float_to_half(src[i]);
}

void steno_f16_to_f32(const uint16_t *src, float *dst, long count) {
    for (long i = 0; i < count; i++) dst[i] = half_to_float(src[i]);
}

static void logits_portable(const uint16_t *w, const float *x, int batch, int dim,
                            int v_begin, int v_end, float *out, int out_stride) {
    for (int v = v_begin; v < v_end; v++) {
        const uint16_t *row = w + (long)v * dim;
        for (int b = 0; b < batch; b++) {
            const float *xb = x + (long)b * dim;
            float sum = 0;
            for (int k = 0; k < dim; k++) sum += xb[k] * half_to_float(row[k]);
            out[(long)b * out_stride + v] = sum;
        }
    }
}

#ifdef STENO_X86
__attribute__((target("avx2,fma,f16c")))
static inline float hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v);
    __m128 hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    __m128 shuf = _mm_movehdup_ps(lo);
    __m128 sums = _mm_add_ps(lo, shuf);
    shuf = _mm_movehl_ps(shuf, sums);
    sums = _mm_add_ss(sums, shuf);
    return _mm_cvtss_f32(sums);
}

/// Two weight rows at a time against `nb` inputs: 2·nb independent FMA chains hide the FMA latency. `nb` is a
/// compile-time constant at every call site below, so the accumulators live in registers.
__attribute__((target("avx2,fma,f16c"), always_inline))
static inline void logits_avx2_rows(const uint16_t *w, const float *x, const int nb, int dim,
                                    int v_begin, int v_end, float *out, int out_stride) {
    int vec_dim = dim & ~7;
    int v = v_begin;
    for (; v + 1 < v_end; v += 2) {
        const uint16_t *r0 = w + (long)v * dim;
        const uint16_t *r1 = r0 + dim;
        __m256 a0[8], a1[8];
        STENO_UNROLL
        for (int b = 0; b < nb; b++) { a0[b] = _mm256_setzero_ps(); a1[b] = _mm256_setzero_ps(); }
        for (int k = 0; k < vec_dim; k += 8) {
            __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r0 + k)));
            __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r1 + k)));
            STENO_UNROLL
            for (int b = 0; b < nb; b++) {
                __m256 xv = _mm256_loadu_ps(x + (long)b * dim + k);
                a0[b] = _mm256_fmadd_ps(w0, xv, a0[b]);
                a1[b] = _mm256_fmadd_ps(w1, xv, a1[b]);
            }
        }
        for (int b = 0; b < nb; b++) {
            float s0 = hsum256(a0[b]), s1 = hsum256(a1[b]);
            for (int k = vec_dim; k < dim; k++) {
                s0 += x[(long)b * dim + k] * half_to_float(r0[k]);
                s1 += x[(long)b * dim + k] * half_to_float(r1[k]);
            }
            out[(long)b * out_stride + v] = s0;
            out[(long)b * out_stride + v + 1] = s1;
        }
    }
    if (v < v_end) logits_portable(w, x, nb, dim, v, v_end, out, out_stride);
}

__attribute__((target("avx2,fma,f16c")))
static void logits_avx2(const uint16_t *w, const float *x, int batch, int dim,
                        int v_begin, int v_end, float *out, int out_stride) {
    switch (batch) {
    case 1: logits_avx2_rows(w, x, 1, dim, v_begin, v_end, out, out_stride); break;
    case 2: logits_avx2_rows(w, x, 2, dim, v_begin, v_end, out, out_stride); break;
    case 3: logits_avx2_rows(w, x, 3, dim, v_begin, v_end, out, out_stride); break;
    case 4: logits_avx2_rows(w, x, 4, dim, v_begin, v_end, out, out_stride); break;
    case 5: logits_avx2_rows(w, x, 5, dim, v_begin, v_end, out, out_stride); break;
    case 6: logits_avx2_rows(w, x, 6, dim, v_begin, v_end, out, out_stride); break;
    case 7: logits_avx2_rows(w, x, 7, dim, v_begin, v_end, out, out_stride); break;
    default: logits_avx2_rows(w, x, 8, dim, v_begin, v_end, out, out_stride); break;
    }
}
#endif

int steno_kernels_have_avx2(void) {
#ifdef STENO_X86
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    }
    return cached;
#else
    return 0;
#endif
}

static void logits_block(const uint16_t *w, const float *x, int batch, int dim,
                         int v_begin, int v_end, float *out, int out_stride) {
#ifdef STENO_X86
    if (steno_kernels_have_avx2()) {
        logits_avx2(w, x, batch, dim, v_begin, v_end, out, out_stride);
        return;
    }
#endif
    logits_portable(w, x, batch, dim, v_begin, v_end, out, out_stride);
}

void steno_logits_f16(const uint16_t *w, const float *x, int batch, int dim,
                      int v_begin, int v_end, float *out, int out_stride) {
    if (batch <= 0 || v_end <= v_begin) return;
    if (batch <= 8) {
        logits_block(w, x, batch, dim, v_begin, v_end, out, out_stride);
        return;
    }
    // Larger batches: blocks of weight rows small enough to stay in cache, each applied to every group of
    // 8 inputs (8 accumulators stay in registers).
    const int rows_per_block = 32;
    for (int v0 = v_begin; v0 < v_end; v0 += rows_per_block) {
        int v1 = v0 + rows_per_block < v_end ? v0 + rows_per_block : v_end;
        for (int b0 = 0; b0 < batch; b0 += 8) {
            int n = batch - b0 < 8 ? batch - b0 : 8;
            logits_block(w, x + (long)b0 * dim, n, dim, v0, v1, out + (long)b0 * out_stride, out_stride);
        }
    }
}

static void weighted_rows_portable(const uint16_t *v, const float *p, int batch, int rows, int dim, int p_stride,
                                   float *out, int out_stride) {
    float row[256];
    for (int r = 0; r < rows; r++) {
        for (int j0 = 0; j0 < dim; j0 += 256) {
            int n = dim - j0 < 256 ? dim - j0 : 256;
            for (int j = 0; j < n; j++) row[j] = half_to_float(v[(long)r * dim + j0 + j]);
            for (int b = 0; b < batch; b++) {
                float weight = p[(long)b * p_stride + r];
                float *o = out + (long)b * out_stride + j0;
                for (int j = 0; j < n; j++) o[j] += weight * row[j];
            }
        }
    }
}

#ifdef STENO_X86
__attribute__((target("avx2,fma,f16c")))
static void weighted_rows_avx2(const uint16_t *v, const float *p, int batch, int rows, int dim, int p_stride,
                               float *out, int out_stride) {
    // Specialized for head width 64 (every Whisper model): 8 vectors of the value row stay in registers.
    for (int r = 0; r < rows; r++) {
        const uint16_t *vr = v + (long)r * dim;
        __m256 row[8];
        for (int k = 0; k < 8; k++) row[k] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vr + 8 * k)));
        for (int b = 0; b < batch; b++) {
            __m256 weight = _mm256_set1_ps(p[(long)b * p_stride + r]);
            float *o = out + (long)b * out_stride;
            for (int k = 0; k < 8; k++) {
                _mm256_storeu_ps(o + 8 * k, _mm256_fmadd_ps(weight, row[k], _mm256_loadu_ps(o + 8 * k)));
            }
        }
    }
}
#endif

void steno_weighted_rows_f16(const uint16_t *v, const float *p, int batch, int rows, int dim, int p_stride,
                             float *out, int out_stride) {
#ifdef STENO_X86
    if (dim == 64 && steno_kernels_have_avx2()) {
        weighted_rows_avx2(v, p, batch, rows, dim, p_stride, out, out_stride);
        return;
    }
#endif
    weighted_rows_portable(v, p, batch, rows, dim, p_stride, out, out_stride);
}

/* ---- Softmax and GELU ---------------------------------------------------------------------------------- */

/// exp(x) for x <= 0 (clamped below at -87): 2^(x log2 e), the fraction by a degree-6 polynomial (rel. error ~6e-6).
static inline float exp_scalar(float x) {
    if (x < -87.0f) return 0.0f;
    float t = x * 1.44269504088896341f;
    float fi = floorf(t);
    float f = t - fi;
    float p = 1.535336188319500e-4f;
    p = p * f + 1.339887440266574e-3f;
    p = p * f + 9.618437357674640e-3f;
    p = p * f + 5.550332471162809e-2f;
    p = p * f + 2.402264791363012e-1f;
    p = p * f + 6.931472028550421e-1f;
    p = p * f + 1.0f;
    int32_t bits = ((int32_t)fi + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return p * scale;
}

static void softmax_row_portable(float *row, int n) {
    float m = -INFINITY;
    for (int i = 0; i < n; i++) if (row[i] > m) m = row[i];
    if (m == -INFINITY) return;
    float sum = 0;
    for (int i = 0; i < n; i++) { float e = exp_scalar(row[i] - m); row[i] = e; sum += e; }
    float inv = 1.0f / sum;
    for (int i = 0; i < n; i++) row[i] *= inv;
}

#ifdef STENO_X86
__attribute__((target("avx2,fma")))
static inline __m256 exp_avx2(__m256 x) {
    __m256 underflow = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_LT_OQ);  // incl. -inf: exactly 0
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    __m256 t = _mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f));
    __m256 fi = _mm256_floor_ps(t);
    __m256 f = _mm256_sub_ps(t, fi);
    __m256 p = _mm256_set1_ps(1.535336188319500e-4f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.339887440266574e-3f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.618437357674640e-3f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.550332471162809e-2f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.402264791363012e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.931472028550421e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fi), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(underflow, _mm256_mul_ps(p, _mm256_castsi256_ps(bits)));
}

__attribute__((target("avx2,fma")))
static void softmax_row_avx2(float *row, int n) {
    int nv = n & ~7;
    __m256 mv = _mm256_set1_ps(-INFINITY);
    for (int i = 0; i < nv; i += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(row + i));
    float m = -INFINITY;
    float lanes[8];
    _mm256_storeu_ps(lanes, mv);
    for (int k = 0; k < 8; k++) if (lanes[k] > m) m = lanes[k];
    for (int i = nv; i < n; i++) if (row[i] > m) m = row[i];
    if (m == -INFINITY) return;
    __m256 mb = _mm256_set1_ps(m);
    __m256 sv = _mm256_setzero_ps();
    for (int i = 0; i < nv; i += 8) {
        __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(row + i), mb));
        _mm256_storeu_ps(row + i, e);
        sv = _mm256_add_ps(sv, e);
    }
    float sum = hsum256(sv);
    for (int i = nv; i < n; i++) { float e = exp_scalar(row[i] - m); row[i] = e; sum += e; }
    __m256 inv = _mm256_set1_ps(1.0f / sum);
    for (int i = 0; i < nv; i += 8) _mm256_storeu_ps(row + i, _mm256_mul_ps(_mm256_loadu_ps(row + i), inv));
    for (int i = nv; i < n; i++) row[i] *= 1.0f / sum;
}

__attribute__((target("avx2,fma")))
static void gelu_avx2(float *x, long n) {
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f), inv_sqrt2 = _mm256_set1_ps(0.70710678118654752f);
    const __m256 sign_mask = _mm256_set1_ps(-0.0f);
    long nv = n & ~7L;
    for (long i = 0; i < nv; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 z = _mm256_mul_ps(v, inv_sqrt2);
        __m256 a = _mm256_andnot_ps(sign_mask, z);
        __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), a, one));
        __m256 p = _mm256_set1_ps(1.061405429f);
        p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
        p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
        p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
        p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
        __m256 e = exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(a, a)));
        __m256 y = _mm256_sub_ps(one, _mm256_mul_ps(_mm256_mul_ps(p, t), e));
        y = _mm256_or_ps(y, _mm256_and_ps(z, sign_mask));  // erf is odd
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, y)));
    }
    for (long i = nv; i < n; i++) {
        float z = x[i] * 0.70710678118654752f, a = fabsf(z);
        float t = 1.0f / (1.0f + 0.3275911f * a);
        float p = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
        float y = 1.0f - p * exp_scalar(-a * a);
        x[i] = 0.5f * x[i] * (1.0f + (z < 0 ? -y : y));
    }
}
#endif

void steno_softmax_rows(float *x, int rows, int columns, int stride) {
    for (int r = 0; r < rows; r++) {
        float *row = x + (long)r * stride;
#ifdef STENO_X86
        if (steno_kernels_have_avx2()) { softmax_row_avx2(row, columns); continue; }
#endif
        softmax_row_portable(row, columns);
    }
}

void steno_gelu(float *x, long count) {
#ifdef STENO_X86
    if (steno_kernels_have_avx2()) { gelu_avx2(x, count); return; }
#endif
    for (long i = 0; i < count; i++) {
        float z = x[i] * 0.70710678118654752f, a = fabsf(z);
        float t = 1.0f / (1.0f + 0.3275911f * a);
        float p = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
        float y = 1.0f - p * exp_scalar(-a * a);
        x[i] = 0.5f * x[i] * (1.0f + (z < 0 ? -y : y));
    }
}
