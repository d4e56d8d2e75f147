#ifndef STENO_KERNELS_H
#define STENO_KERNELS_H

#include <stdint.h>

/// Logits of a small batch against a float16 vocabulary matrix:
/// out[b * out_stride + v] = dot(x[b * dim ...], half_to_float(w[v * dim ...])) for v in [v_begin, v_end).
/// Reads each weight row once for the whole batch (the projection is bound by memory traffic, and the
/// model's weights are float16 on disk, so keeping them as float16 loses nothing).
/// Uses AVX2 + F16C + FMA when the CPU has them, a portable loop otherwise. batch ≤ 8 per call.
void steno_logits_f16(const uint16_t *w, const float *x, int batch, int dim,
                      int v_begin, int v_end, float *out, int out_stride);

/// Attention read-out against float16 values: out[b * out_stride + j] += sum over r of p[b * p_stride + r] * v[r * dim + j]
/// for r in [0, rows), j in [0, dim). Each value row is converted once for the whole batch.
void steno_weighted_rows_f16(const uint16_t *v, const float *p, int batch, int rows, int dim, int p_stride,
                             float *out, int out_stride);

/// Softmax of each of `rows` rows of `columns` values (row stride `stride`), in place. -INFINITY entries get 0.
void steno_softmax_rows(float *x, int rows, int columns, int stride);

/// GELU in its erf form, x·Φ(x), in place (erf by Abramowitz & Stegun 7.1.26, |error| < 1e-5).
void steno_gelu(float *x, long count);

/// Converts float32 values to IEEE float16 bit patterns (round to nearest even).
void steno_f32_to_f16(const float *src, uint16_t *dst, long count);

/// Converts IEEE float16 bit patterns to float32.
void steno_f16_to_f32(const uint16_t *src, float *dst, long count);

/// 1 if the fast path (AVX2, F16C, FMA) is in use.
int steno_kernels_have_avx2(void);

#endif
