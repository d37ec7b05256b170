/*
 * blas_shim.c — binds swiftattr_blas.h's routines to the BLAS this build links (see that header).
 * It does not include swiftattr_blas.h: in the system build, <cblas.h> declares the standard names itself.
 */
#ifdef SA_SYSTEM_BLAS
#include <cblas.h>
#include <lapacke.h>
#define BLAS_NAME(name) name
#define FLAVOUR "system-openblas"
#else
typedef int blasint;
typedef int lapack_int;
enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 };
enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112, CblasConjTrans = 113 };
enum CBLAS_UPLO { CblasUpper = 121, CblasLower = 122 };
enum CBLAS_DIAG { CblasNonUnit = 131, CblasUnit = 132 };
enum CBLAS_SIDE { CblasLeft = 141, CblasRight = 142 };
#define BLAS_NAME(name) scipy_##name
#define FLAVOUR "scipy-openblas32"
void scipy_cblas_sgemm(enum CBLAS_ORDER o, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, blasint m, blasint n, blasint k, float alpha, const float *a, blasint lda, const float *b, blasint ldb, float beta, float *c, blasint ldc);
void scipy_cblas_dgemm(enum CBLAS_ORDER o, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, blasint m, blasint n, blasint k, double alpha, const double *a, blasint lda, const double *b, blasint ldb, double beta, double *c, blasint ldc);
void scipy_cblas_dsyrk(enum CBLAS_ORDER o, enum CBLAS_UPLO u, enum CBLAS_TRANSPOSE t, blasint n, blasint k, double alpha, const double *a, blasint lda, double beta, double *c, blasint ldc);
void scipy_cblas_dtrmm(enum CBLAS_ORDER o, enum CBLAS_SIDE s, enum CBLAS_UPLO u, enum CBLAS_TRANSPOSE t, enum CBLAS_DIAG d, blasint m, blasint n, double alpha, const double *a, blasint lda, double *b, blasint ldb);
lapack_int scipy_LAPACKE_dpotrf(int o, char u, lapack_int n, double *a, lapack_int lda);
lapack_int scipy_LAPACKE_dpotri(int o, char u, lapack_int n, double *a, lapack_int lda);
lapack_int scipy_LAPACKE_dposv(int o, char u, lapack_int n, lapack_int nrhs, double *a, lapack_int lda, double *b, lapack_int ldb);
lapack_int scipy_LAPACKE_dtrtri(int o, char u, char d, lapack_int n, double *a, lapack_int lda);
lapack_int scipy_LAPACKE_dpocon(int o, char u, lapack_int n, const double *a, lapack_int lda, double anorm, double *rcond);
lapack_int scipy_LAPACKE_dsyevd(int o, char jobz, char u, lapack_int n, double *a, lapack_int lda, double *w);
lapack_int scipy_LAPACKE_dgesdd(int o, char jobz, lapack_int m, lapack_int n, double *a, lapack_int lda, double *s, double *u, lapack_int ldu, double *vt, lapack_int ldvt);
void scipy_openblas_set_num_threads(int n);
int scipy_openblas_get_num_threads(void);
char * scipy_openblas_get_config(void);
char * scipy_openblas_get_corename(void);
#endif

#define HIDDEN __attribute__((visibility("hidden")))

HIDDEN void swiftattr_blas_cblas_sgemm(enum CBLAS_ORDER o, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, blasint m, blasint n, blasint k, float alpha, const float *a, blasint lda, const float *b, blasint ldb, float beta, float *c, blasint ldc) { BLAS_NAME(cblas_sgemm)(o, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc); }
HIDDEN void swiftattr_blas_cblas_dgemm(enum CBLAS_ORDER o, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, blasint m, blasint n, blasint k, double alpha, const double *a, blasint lda, const double *b, blasint ldb, double beta, double *c, blasint ldc) { BLAS_NAME(cblas_dgemm)(o, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc); }
HIDDEN void swiftattr_blas_cblas_dsyrk(enum CBLAS_ORDER o, enum CBLAS_UPLO u, enum CBLAS_TRANSPOSE t, blasint n, blasint k, double alpha, const double *a, blasint lda, double beta, double *c, blasint ldc) { BLAS_NAME(cblas_dsyrk)(o, u, t, n, k, alpha, a, lda, beta, c, ldc); }
HIDDEN void swiftattr_blas_cblas_dtrmm(enum CBLAS_ORDER o, enum CBLAS_SIDE s, enum CBLAS_UPLO u, enum CBLAS_TRANSPOSE t, enum CBLAS_DIAG d, blasint m, blasint n, double alpha, const double *a, blasint lda, double *b, blasint ldb) { BLAS_NAME(cblas_dtrmm)(o, s, u, t, d, m, n, alpha, a, lda, b, ldb); }
HIDDEN lapack_int swiftattr_blas_LAPACKE_dpotrf(int o, char u, lapack_int n, double *a, lapack_int lda) { return BLAS_NAME(LAPACKE_dpotrf)(o, u, n, a, lda); }
HIDDEN lapack_int swiftattr_blas_LAPACKE_dpotri(int o, char u, lapack_int n, double *a, lapack_int lda) { return BLAS_NAME(LAPACKE_dpotri)(o, u, n, a, lda); }
HIDDEN lapack_int swiftattr_blas_LAPACKE_dposv(int o, char u, lapack_int n, lapack_int nrhs, double *a, lapack_int lda, double *b, lapack_int ldb) { return BLAS_NAME(LAPACKE_dposv)(o, u, n, nrhs, a, lda, b, ldb); }
HIDDEN lapack_int swiftattr_blas_LAPACKE_dtrtri(int o, char u, char d, lapack_int n, double *a, lapack_int lda) { return BLAS_NAME(LAPACKE_dtrtri)(o, u, d, n, a, lda); }
HIDDEN lapack_int swiftattr_blas_LAPACKE_dpocon(int o, char u, lapack_int n, const double *a, lapack_int lda, double anorm, double *rcond) { return BLAS_NAME(LAPACKE_dpocon)(o, u, n, a, lda, anorm, rcond); }
HIDDEN lapack_int swiftattr_blas_LAPACKE_dsyevd(int o, char jobz, char u, lapack_int n, double *a, lapack_int lda, double *w) { return BLAS_NAME(LAPACKE_dsyevd)(o, jobz, u, n, a, lda, w); }
HIDDEN lapack_int swiftattr_blas_LAPACKE_dgesdd(int o, char jobz, lapack_int m, lapack_int n, double *a, lapack_int lda, double *s, double *u, lapack_int ldu, double *vt, lapack_int ldvt) { return BLAS_NAME(LAPACKE_dgesdd)(o, jobz, m, n, a, lda, s, u, ldu, vt, ldvt); }
HIDDEN void swiftattr_blas_openblas_set_num_threads(int n) { BLAS_NAME(openblas_set_num_threads)(n); }
HIDDEN int swiftattr_blas_openblas_get_num_threads(void) { return BLAS_NAME(openblas_get_num_threads)(); }
HIDDEN char * swiftattr_blas_openblas_get_config(void) { return BLAS_NAME(openblas_get_config)(); }
HIDDEN char * swiftattr_blas_openblas_get_corename(void) { return BLAS_NAME(openblas_get_corename)(); }

HIDDEN const char *sa_blas_flavour(void) { return FLAVOUR; }
