#include "swiftattr_blas.h"

__attribute__((visibility("hidden"))) const char *sa_blas_flavour(void) {
#ifdef SA_SYSTEM_BLAS
    return "system-openblas";
#else
    return "scipy-openblas32";
#endif
}
