// OpenBLAS's own single-precision GEMM speed on this machine, as the ceiling for the engine's encoder GFLOP/s.
//
// Usage: sgemm_peak THREADS [MxNxK ...]
// Each shape is C[M×N] = A[M×K] · B[N×K]ᵀ in row-major order, the form of a linear layer whose weight is stored
// [out, in] (as in CTranslate2 models): M = positions, N = outputs, K = inputs. For each shape it prints the best
// (peak) and the median GFLOP/s over repeated calls after a warm-up.
// Build: cc -O2 sgemm_peak.c $(pkg-config --cflags --libs openblas) -o sgemm_peak
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

// Declared by OpenBLAS; not in every cblas.h.
extern void openblas_set_num_threads(int);
extern char *openblas_get_corename(void);
extern char *openblas_get_config(void);

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static float *filled(size_t count, unsigned *seed) {
    float *p = malloc(count * sizeof(float));
    if (!p) { perror("malloc"); exit(1); }
    for (size_t i = 0; i < count; i++) p[i] = (float)rand_r(seed) / RAND_MAX - 0.5f;
    return p;
}

static void measure(int m, int n, int k) {
    unsigned seed = 42;
    float *a = filled((size_t)m * k, &seed), *b = filled((size_t)n * k, &seed), *c = filled((size_t)m * n, &seed);
    double flop = 2.0 * m * n * k;
    for (int i = 0; i < 3; i++)  // warm-up: thread pool start, page faults, caches
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
    enum { max_runs = 200 };
    double times[max_runs];
    int runs = 0;
    double start = now();
    // At least 10 calls and 0.5 s of work, so short products are timed over many calls.
    while (runs < max_runs && (runs < 10 || now() - start < 0.5)) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
        times[runs++] = now() - t0;
    }
    qsort(times, runs, sizeof(double), by_value);
    printf("sgemm %dx%dx%d: peak %.1f GFLOP/s, median %.1f GFLOP/s (%d calls)\n",
           m, n, k, flop / times[0] / 1e9, flop / times[runs / 2] / 1e9, runs);
    free(a); free(b); free(c);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s THREADS [MxNxK ...]\n", argv[0]);
        return 2;
    }
    int threads = atoi(argv[1]);
    openblas_set_num_threads(threads);
    printf("openblas: %s; core %s; %d threads\n", openblas_get_config(), openblas_get_corename(), threads);
    if (argc == 2) {
        // Whisper tiny's encoder products (1500 positions, width 384, MLP 1536) and a square reference.
        measure(1500, 1536, 384);
        measure(1500, 384, 1536);
        measure(1024, 1024, 1024);
        return 0;
    }
    for (int i = 2; i < argc; i++) {
        int m, n, k;
        if (sscanf(argv[i], "%dx%dx%d", &m, &n, &k) != 3 || m <= 0 || n <= 0 || k <= 0) {
            fprintf(stderr, "bad shape '%s' (want MxNxK)\n", argv[i]);
            return 2;
        }
        measure(m, n, k);
    }
    return 0;
}
