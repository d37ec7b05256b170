/*
 * swiftattr_blas.h — the few BLAS/LAPACKE routines swiftattr calls, under their standard names.
 *
 * Default build: the OpenBLAS that numpy and scipy ship (PyPI `scipy-openblas32`: a current OpenBLAS with
 * DYNAMIC_ARCH, 32-bit integers, every symbol prefixed `scipy_`). Its headers are not needed: the
 * prototypes are declared here, and each standard name is a `static inline` forwarder to the prefixed
 * symbol (Swift imports inline functions, not function-like macros).
 *
 * With SA_SYSTEM_BLAS defined (build with SWIFTATTR_BLAS=system) the distribution's <cblas.h> and
 * <lapacke.h> are used instead (Debian: libopenblas-dev, liblapacke-dev).
 */
#ifndef SWIFTATTR_BLAS_H
#define SWIFTATTR_BLAS_H

#ifdef SA_SYSTEM_BLAS
#include <cblas.h>
#include <lapacke.h>
#else

/* CBLAS enums (values from the CBLAS standard). */
typedef enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 } CBLAS_ORDER;
typedef enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112, CblasConjTrans = 113 } CBLAS_TRANSPOSE;
typedef enum CBLAS_UPLO { CblasUpper = 121, CblasLower = 122 } CBLAS_UPLO;
typedef enum CBLAS_DIAG { CblasNonUnit = 131, CblasUnit = 132 } CBLAS_DIAG;
typedef enum CBLAS_SIDE { CblasLeft = 141, CblasRight = 142 } CBLAS_SIDE;
typedef int blasint;
typedef int lapack_int;
#define LAPACK_ROW_MAJOR 101
#define LAPACK_COL_MAJOR 102

void scipy_cblas_sgemm(enum CBLAS_ORDER, enum CBLAS_TRANSPOSE, enum CBLAS_TRANSPOSE, blasint, blasint, blasint,
                       float, const float *, blasint, const float *, blasint, float, float *, blasint);
void scipy_cblas_dgemm(enum CBLAS_ORDER, enum CBLAS_TRANSPOSE, enum CBLAS_TRANSPOSE, blasint, blasint, blasint,
                       double, const double *, blasint, const double *, blasint, double, double *, blasint);
void scipy_cblas_dsyrk(enum CBLAS_ORDER, enum CBLAS_UPLO, enum CBLAS_TRANSPOSE, blasint, blasint, double,
                       const double *, blasint, double, double *, blasint);
void scipy_cblas_dtrmm(enum CBLAS_ORDER, enum CBLAS_SIDE, enum CBLAS_UPLO, enum CBLAS_TRANSPOSE, enum CBLAS_DIAG,
                       blasint, blasint, double, const double *, blasint, double *, blasint);
void scipy_cblas_dger(enum CBLAS_ORDER, blasint, blasint, double, const double *, blasint, const double *, blasint,
                      double *, blasint);
lapack_int scipy_LAPACKE_dpotrf(int, char, lapack_int, double *, lapack_int);
lapack_int scipy_LAPACKE_dpotri(int, char, lapack_int, double *, lapack_int);
lapack_int scipy_LAPACKE_dposv(int, char, lapack_int, lapack_int, double *, lapack_int, double *, lapack_int);
lapack_int scipy_LAPACKE_dtrtri(int, char, char, lapack_int, double *, lapack_int);
lapack_int scipy_LAPACKE_dpocon(int, char, lapack_int, const double *, lapack_int, double, double *);
lapack_int scipy_LAPACKE_dsyevd(int, char, char, lapack_int, double *, lapack_int, double *);
lapack_int scipy_LAPACKE_dgesdd(int, char, lapack_int, lapack_int, double *, lapack_int, double *, double *,
                                lapack_int, double *, lapack_int);
void scipy_openblas_set_num_threads(int);
int scipy_openblas_get_num_threads(void);
char *scipy_openblas_get_config(void);
char *scipy_openblas_get_corename(void);

static inline void cblas_sgemm(enum CBLAS_ORDER o, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, blasint m,
                               blasint n, blasint k, float alpha, const float *a, blasint lda, const float *b,
                               blasint ldb, float beta, float *c, blasint ldc) {
    scipy_cblas_sgemm(o, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
static inline void cblas_dgemm(enum CBLAS_ORDER o, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, blasint m,
                               blasint n, blasint k, double alpha, const double *a, blasint lda, const double *b,
                               blasint ldb, double beta, double *c, blasint ldc) {
    scipy_cblas_dgemm(o, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
static inline void cblas_dsyrk(enum CBLAS_ORDER o, enum CBLAS_UPLO u, enum CBLAS_TRANSPOSE t, blasint n, blasint k,
                               double alpha, const double *a, blasint lda, double beta, double *c, blasint ldc) {
    scipy_cblas_dsyrk(o, u, t, n, k, alpha, a, lda, beta, c, ldc);
}
static inline void cblas_dtrmm(enum CBLAS_ORDER o, enum CBLAS_SIDE s, enum CBLAS_UPLO u, enum CBLAS_TRANSPOSE t,
                               enum CBLAS_DIAG d, blasint m, blasint n, double alpha, const double *a, blasint lda,
                               double *b, blasint ldb) {
    scipy_cblas_dtrmm(o, s, u, t, d, m, n, alpha, a, lda, b, ldb);
}
static inline void cblas_dger(enum CBLAS_ORDER o, blasint m, blasint n, double alpha, const double *x, blasint incx,
                              const double *y, blasint incy, double *a, blasint lda) {
    scipy_cblas_dger(o, m, n, alpha, x, incx, y, incy, a, lda);
}
static inline lapack_int LAPACKE_dpotrf(int o, char u, lapack_int n, double *a, lapack_int lda) {
    return scipy_LAPACKE_dpotrf(o, u, n, a, lda);
}
static inline lapack_int LAPACKE_dpotri(int o, char u, lapack_int n, double *a, lapack_int lda) {
    return scipy_LAPACKE_dpotri(o, u, n, a, lda);
}
static inline lapack_int LAPACKE_dposv(int o, char u, lapack_int n, lapack_int nrhs, double *a, lapack_int lda,
                                       double *b, lapack_int ldb) {
    return scipy_LAPACKE_dposv(o, u, n, nrhs, a, lda, b, ldb);
}
static inline lapack_int LAPACKE_dtrtri(int o, char u, char d, lapack_int n, double *a, lapack_int lda) {
    return scipy_LAPACKE_dtrtri(o, u, d, n, a, lda);
}
static inline lapack_int LAPACKE_dpocon(int o, char u, lapack_int n, const double *a, lapack_int lda, double anorm,
                                        double *rcond) {
    return scipy_LAPACKE_dpocon(o, u, n, a, lda, anorm, rcond);
}
static inline lapack_int LAPACKE_dsyevd(int o, char jobz, char u, lapack_int n, double *a, lapack_int lda, double *w) {
    return scipy_LAPACKE_dsyevd(o, jobz, u, n, a, lda, w);
}
static inline lapack_int LAPACKE_dgesdd(int o, char jobz, lapack_int m, lapack_int n, double *a, lapack_int lda,
                                        double *s, double *u, lapack_int ldu, double *vt, lapack_int ldvt) {
    return scipy_LAPACKE_dgesdd(o, jobz, m, n, a, lda, s, u, ldu, vt, ldvt);
}
static inline void openblas_set_num_threads(int n) { scipy_openblas_set_num_threads(n); }
static inline int openblas_get_num_threads(void) { return scipy_openblas_get_num_threads(); }
static inline char *openblas_get_config(void) { return scipy_openblas_get_config(); }
static inline char *openblas_get_corename(void) { return scipy_openblas_get_corename(); }
#endif /* SA_SYSTEM_BLAS */

/** Which BLAS this build links: "scipy-openblas32" or "system-openblas". */
__attribute__((visibility("hidden"))) const char *sa_blas_flavour(void);

#endif /* SWIFTATTR_BLAS_H */
