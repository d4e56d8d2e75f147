// OpenBLAS's CBLAS interface (Debian's libopenblas-dev, found through pkg-config `openblas`).
#include <cblas.h>
// Not declared by every cblas.h; OpenBLAS always exports it.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
// LAPACK's symmetric eigensolver (OpenBLAS bundles LAPACK; Debian's headers do not declare it). The trailing
// lengths are gfortran's hidden lengths of the three character arguments.
#include <stddef.h>
void dsyevr_(const char *jobz, const char *range, const char *uplo, const int *n, double *a, const int *lda,
             const double *vl, const double *vu, const int *il, const int *iu, const double *abstol, int *m,
             double *w, double *z, const int *ldz, int *isuppz, double *work, const int *lwork, int *iwork,
             const int *liwork, int *info, size_t jobz_length, size_t range_length, size_t uplo_length);
