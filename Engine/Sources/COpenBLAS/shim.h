// OpenBLAS's CBLAS interface (Debian's libopenblas-dev, found through pkg-config `openblas`).
#include <cblas.h>
// Not declared by every cblas.h; OpenBLAS always exports it.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
