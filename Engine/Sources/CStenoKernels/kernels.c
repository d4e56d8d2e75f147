#include "steno_kernels.h"
#include <string.h>
#include <math.h>

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

__attribute__((target("avx2,fma,f16c")))
static void logits_avx2(const uint16_t *w, const float *x, int batch, int dim,
                        int v_begin, int v_end, float *out, int out_stride) {
    int vec_dim = dim & ~7;
    for (int v = v_begin; v < v_end; v++) {
        const uint16_t *row = w + (long)v * dim;
        __m256 acc[8];
        for (int b = 0; b < batch; b++) acc[b] = _mm256_setzero_ps();
        for (int k = 0; k < vec_dim; k += 8) {
            __m256 wv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + k)));
            for (int b = 0; b < batch; b++) {
                acc[b] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + (long)b * dim + k), acc[b]);
            }
        }
        for (int b = 0; b < batch; b++) {
            float sum = hsum256(acc[b]);
            for (int k = vec_dim; k < dim; k++) sum += x[(long)b * dim + k] * half_to_float(row[k]);
            out[(long)b * out_stride + v] = sum;
        }
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

void steno_logits_f16(const uint16_t *w, const float *x, int batch, int dim,
                      int v_begin, int v_end, float *out, int out_stride) {
    if (batch <= 0 || v_end <= v_begin) return;
    if (batch > 8) {  // keep the accumulators in registers: split large batches
        steno_logits_f16(w, x, 8, dim, v_begin, v_end, out, out_stride);
        steno_logits_f16(w, x + 8L * dim, batch - 8, dim, v_begin, v_end, out + 8L * out_stride, out_stride);
        return;
    }
#ifdef STENO_X86
    if (steno_kernels_have_avx2()) {
        logits_avx2(w, x, batch, dim, v_begin, v_end, out, out_stride);
        return;
    }
#endif
    logits_portable(w, x, batch, dim, v_begin, v_end, out, out_stride);
}
