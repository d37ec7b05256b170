/*
 * swiftattr_blas.h — the few BLAS/LAPACKE routines swiftattr calls, under their standard names.
 *
 * Swift sees only this header, the same in every build: CBLAS's enums, and each routine as a
 * `static inline` forwarder (Swift imports inline functions, not function-like macros) to a hidden
 * `swiftattr_blas_*` function of blas_shim.c. That file binds them, at compile time, to the OpenBLAS that
 * numpy and scipy ship (PyPI `scipy-openblas32`: DYNAMIC_ARCH, 32-bit integers, every symbol prefixed
 * `scipy_`), or with SA_SYSTEM_BLAS (build with SWIFTATTR_BLAS=system) to the distribution's CBLAS and
 * LAPACKE (Debian: libopenblas-dev, liblapacke-dev).
 */
#ifndef SWIFTATTR_BLAS_H
#define SWIFTATTR_BLAS_H

/* CBLAS enums (values from the CBLAS standard). */
enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 };
enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112, CblasConjTrans = 113 };
enum CBLAS_UPLO { CblasUpper = 121, CblasLower = 122 };
enum CBLAS_DIAG { CblasNonUnit = 131, CblasUnit = 132 };
enum CBLAS_SIDE { CblasLeft = 141, CblasRight = 142 };
typedef int blasint;
typedef int lapack_int;
#define LAPACK_ROW_MAJOR 101
#define LAPACK_COL_MAJOR 102

#define SWIFTATTR_BLAS_HIDDEN __attribute__((visibility("hidden")))

SWIFTATTR_BLAS_HIDDEN void swiftattr_blas_cblas_sgemm(enum CBLAS_ORDER o, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, blasint m, blasint n, blasint k, float alpha, const float *a, blasint lda, const float *b, blasint ldb, float beta, float *c, blasint ldc);
SWIFTATTR_BLAS_HIDDEN void swiftattr_blas_cblas_dgemm(enum CBLAS_ORDER o, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, blasint m, blasint n, blasint k, double alpha, const double *a, blasint lda, const double *b, blasint ldb, double beta, double *c, blasint ldc);
SWIFTATTR_BLAS_HIDDEN void swiftattr_blas_cblas_dsyrk(enum CBLAS_ORDER o, enum CBLAS_UPLO u, enum CBLAS_TRANSPOSE t, blasint n, blasint k, double alpha, const double *a, blasint lda, double beta, double *c, blasint ldc);
SWIFTATTR_BLAS_HIDDEN void swiftattr_blas_cblas_dtrmm(enum CBLAS_ORDER o, enum CBLAS_SIDE s, enum CBLAS_UPLO u, enum CBLAS_TRANSPOSE t, enum CBLAS_DIAG d, blasint m, blasint n, double alpha, const double *a, blasint lda, double *b, blasint ldb);
SWIFTATTR_BLAS_HIDDEN lapack_int swiftattr_blas_LAPACKE_dpotrf(int o, char u, lapack_int n, double *a, lapack_int lda);
SWIFTATTR_BLAS_HIDDEN lapack_int swiftattr_blas_LAPACKE_dpotri(int o, char u, lapack_int n, double *a, lapack_int lda);
SWIFTATTR_BLAS_HIDDEN lapack_int swiftattr_blas_LAPACKE_dposv(int o, char u, lapack_int n, lapack_int nrhs, double *a, lapack_int lda, double *b, lapack_int ldb);
SWIFTATTR_BLAS_HIDDEN lapack_int swiftattr_blas_LAPACKE_dtrtri(int o, char u, char d, lapack_int n, double *a, lapack_int lda);
SWIFTATTR_BLAS_HIDDEN lapack_int swiftattr_blas_LAPACKE_dpocon(int o, char u, lapack_int n, const double *a, lapack_int lda, double anorm, double *rcond);
SWIFTATTR_BLAS_HIDDEN lapack_int swiftattr_blas_LAPACKE_dsyevd(int o, char jobz, char u, lapack_int n, double *a, lapack_int lda, double *w);
SWIFTATTR_BLAS_HIDDEN lapack_int swiftattr_blas_LAPACKE_dgesdd(int o, char jobz, lapack_int m, lapack_int n, double *a, lapack_int lda, double *s, double *u, lapack_int ldu, double *vt, lapack_int ldvt);
SWIFTATTR_BLAS_HIDDEN void swiftattr_blas_openblas_set_num_threads(int n);
SWIFTATTR_BLAS_HIDDEN int swiftattr_blas_openblas_get_num_threads(void);
SWIFTATTR_BLAS_HIDDEN char * swiftattr_blas_openblas_get_config(void);
SWIFTATTR_BLAS_HIDDEN char * swiftattr_blas_openblas_get_corename(void);

static inline void cblas_sgemm(enum CBLAS_ORDER o, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, blasint m, blasint n, blasint k, float alpha, const float *a, blasint lda, const float *b, blasint ldb, float beta, float *c, blasint ldc) { swiftattr_blas_cblas_sgemm(o, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc); }
static inline void cblas_dgemm(enum CBLAS_ORDER o, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, blasint m, blasint n, blasint k, double alpha, const double *a, blasint lda, const double *b, blasint ldb, double beta, double *c, blasint ldc) { swiftattr_blas_cblas_dgemm(o, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc); }
static inline void cblas_dsyrk(enum CBLAS_ORDER o, enum CBLAS_UPLO u, enum CBLAS_TRANSPOSE t, blasint n, blasint k, double alpha, const double *a, blasint lda, double beta, double *c, blasint ldc) { swiftattr_blas_cblas_dsyrk(o, u, t, n, k, alpha, a, lda, beta, c, ldc); }
static inline void cblas_dtrmm(enum CBLAS_ORDER o, enum CBLAS_SIDE s, enum CBLAS_UPLO u, enum CBLAS_TRANSPOSE t, enum CBLAS_DIAG d, blasint m, blasint n, double alpha, const double *a, blasint lda, double *b, blasint ldb) { swiftattr_blas_cblas_dtrmm(o, s, u, t, d, m, n, alpha, a, lda, b, ldb); }
static inline lapack_int LAPACKE_dpotrf(int o, char u, lapack_int n, double *a, lapack_int lda) { return swiftattr_blas_LAPACKE_dpotrf(o, u, n, a, lda); }
static inline lapack_int LAPACKE_dpotri(int o, char u, lapack_int n, double *a, lapack_int lda) { return swiftattr_blas_LAPACKE_dpotri(o, u, n, a, lda); }
static inline lapack_int LAPACKE_dposv(int o, char u, lapack_int n, lapack_int nrhs, double *a, lapack_int lda, double *b, lapack_int ldb) { return swiftattr_blas_LAPACKE_dposv(o, u, n, nrhs, a, lda, b, ldb); }
static inline lapack_int LAPACKE_dtrtri(int o, char u, char d, lapack_int n, double *a, lapack_int lda) { return swiftattr_blas_LAPACKE_dtrtri(o, u, d, n, a, lda); }
static inline lapack_int LAPACKE_dpocon(int o, char u, lapack_int n, const double *a, lapack_int lda, double anorm, double *rcond) { return swiftattr_blas_LAPACKE_dpocon(o, u, n, a, lda, anorm, rcond); }
static inline lapack_int LAPACKE_dsyevd(int o, char jobz, char u, lapack_int n, double *a, lapack_int lda, double *w) { return swiftattr_blas_LAPACKE_dsyevd(o, jobz, u, n, a, lda, w); }
static inline lapack_int LAPACKE_dgesdd(int o, char jobz, lapack_int m, lapack_int n, double *a, lapack_int lda, double *s, double *u, lapack_int ldu, double *vt, lapack_int ldvt) { return swiftattr_blas_LAPACKE_dgesdd(o, jobz, m, n, a, lda, s, u, ldu, vt, ldvt); }
static inline void openblas_set_num_threads(int n) { swiftattr_blas_openblas_set_num_threads(n); }
static inline int openblas_get_num_threads(void) { return swiftattr_blas_openblas_get_num_threads(); }
static inline char * openblas_get_config(void) { return swiftattr_blas_openblas_get_config(); }
static inline char * openblas_get_corename(void) { return swiftattr_blas_openblas_get_corename(); }

/** Which BLAS this build links: "scipy-openblas32" or "system-openblas". */
SWIFTATTR_BLAS_HIDDEN const char *sa_blas_flavour(void);

#endif /* SWIFTATTR_BLAS_H */
