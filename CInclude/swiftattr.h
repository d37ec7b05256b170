/*
 * swiftattr.h — the C interface of libswiftattr.so.
 *
 * swiftattr explains trained neural networks: local attributions (gradients, Integrated Gradients,
 * Expected Gradients, SmoothGrad, DeepLIFT), interactions, and global variable importance (RATE).
 *
 * Conventions (every function below follows them):
 *  - Every symbol starts with `sa_`. A model is an opaque handle (`sa_model *`), built layer by layer
 *    (`sa_model_create`, `sa_model_add_*`) or loaded from a file (`sa_model_load`), and freed with
 *    `sa_model_free`. Once a computation has used it, a model is frozen: adding layers then fails with
 *    SA_ERR_FROZEN. A frozen model is immutable and any number of threads may use it at once.
 *  - Every function returns an `int` status: SA_OK (0) or a negative `sa_status`. `sa_last_error()`
 *    returns the calling thread's message for its last failure; the message names the bad argument.
 *  - Arrays are raw row-major contiguous buffers with explicit int64_t dimensions. Networks compute in
 *    float32; statistics (RATE) in float64. Outputs go into buffers the caller allocates; the size each
 *    must have is stated at the function.
 *  - Nothing the caller passes crashes the process: NULL pointers, zero/negative/overflowing sizes,
 *    shapes that do not fit the model, NaN or infinite values, out-of-range class indices and unknown
 *    enum values return an error.
 *  - Inputs are batch-first: a batch of n examples of the model's input shape (e.g. n×C×H×W) is
 *    n * sa_model_input_size() contiguous floats.
 */
#ifndef SWIFTATTR_H
#define SWIFTATTR_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------------
 * Status codes and errors
 * ------------------------------------------------------------------------------------------------- */

/** Status codes returned by every function. */
typedef enum sa_status {
    SA_OK = 0,
    SA_ERR_NULL_POINTER = -1,      /**< a required pointer argument is NULL */
    SA_ERR_INVALID_ARGUMENT = -2,  /**< a size or option is out of its domain (zero, negative, overflow) */
    SA_ERR_SHAPE = -3,             /**< shapes do not fit together or do not fit the model */
    SA_ERR_NON_FINITE = -4,        /**< an input contains NaN or an infinity */
    SA_ERR_OUT_OF_RANGE = -5,      /**< an index (class target, variable index) is out of range */
    SA_ERR_UNKNOWN_ENUM = -6,      /**< an enum argument has an unknown value */
    SA_ERR_IO = -7,                /**< a file could not be read or written */
    SA_ERR_FORMAT = -8,            /**< a file is not a valid swiftattr model */
    SA_ERR_NUMERICAL = -9,         /**< a factorisation failed (singular beyond repair) */
    SA_ERR_BUFFER_TOO_SMALL = -10, /**< an output buffer is smaller than required */
    SA_ERR_FROZEN = -11,           /**< the model has been used and can no longer be changed */
    SA_ERR_OUT_OF_MEMORY = -12,    /**< an allocation the call needs is too large */
    SA_ERR_INTERNAL = -99          /**< a bug in swiftattr: please report it */
} sa_status;

/** The calling thread's message for its last failed call ("" if none). Valid until the thread's next
 *  failing call; never NULL. */
const char *sa_last_error(void);

/** Interface version of this library (1). */
int sa_version(void);

/* @@MODEL@@ */

/* @@GRADIENTS@@ */

/* @@DEEPLIFT@@ */

/* ---------------------------------------------------------------------------------------------------
 * RATE: global variable importance for Bayesian models
 * (Crawford et al. 2019, Ann. Appl. Stat.; Ish-Horowicz et al. 2019)
 *
 * Given a Gaussian posterior β̃ ∼ N(μ, Σ) of the effect-size analogue of a model's output f for each
 * output class, RATE ranks the p variables by KLD_j = ½ μ_j² α_j with α_j = Λ_jj − 1/Σ_jj (Λ = Σ⁻¹,
 * one factorisation for all j), RATE_j = KLD_j / Σ_k KLD_k, Δ = Σ_j RATE_j log(m·RATE_j) (m = number of
 * scored entries) and ESS = 100/(1+Δ) percent. The exact KLD adds ½[Σ_jjΛ_jj − 1 − log(Σ_jjΛ_jj)].
 *
 * Effect-size analogue (sa_projection): covariance β̃ = X_cᵀ(f − f̄)/(n−1) (X_c: X with centred columns),
 * or pseudoinverse β̃ = X⁺f. Every RATE computation is float64.
 *
 * Options shared by every sa_rate_* function:
 *   exact_kld      0 or 1.
 *   nullify        nullify_count variable indices (0..p−1; NULL when nullify_count is 0): conditional
 *                  RATE — condition on these effects being zero as well; their RATE and KLD are 0 and
 *                  m = p − (number of distinct nullified variables).
 *   groups         group RATE, one score per group, in CSR form: group g holds
 *                  group_members[group_offsets[g] .. group_offsets[g+1]−1]; group_offsets has
 *                  group_count+1 entries starting at 0 and strictly increasing (no empty group). A group
 *                  may not contain a nullified variable. group_count 0: per-variable RATE (both NULL).
 *                  KLD_g = ½ μ_gᵀ(Λ_gg − Σ_gg⁻¹)μ_g (with the nullified set added to g).
 *   jitter         ≥ 0: jitter·mean(diag Σ) is added to Σ's diagonal before factorising (dense path),
 *                  or to the r-dimensional core (low-rank path). 0 for none.
 *   projection     an sa_projection (X-based functions only).
 *   rank           0: automatic (dense path when n ≥ p; low-rank path at the numerical rank of X when
 *                  n < p); r > 0: low-rank path with at most r singular directions of X (truncated SVD;
 *                  O(p r²) time and O(p r) memory, no p×p matrix).
 *
 * Outputs (caller-allocated; m = group_count when group_count > 0, p otherwise):
 *   rate, kld      classes × m doubles;
 *   delta, ess     classes doubles;
 *   info           NULL or 2·classes int64: info[2c] = rank of Σ used for class c (p when full rank),
 *                  info[2c+1] = 1 when Σ was singular or ill-conditioned (reciprocal condition number
 *                  below 10·p·ε, or a low-rank path) and the eigendecomposition pseudo-inverse was used,
 *                  0 when one Cholesky factorisation served;
 *   esa_mean       NULL or classes × p doubles: the effect-size posterior mean μ (X-based functions).
 *
 * Singular Σ: Cholesky first, then the Moore–Penrose pseudo-inverse from an eigendecomposition, with
 * α_q = Λ_{q,−q}Λ_{−q,−q}⁺Λ_{−q,q} (the authors' convention). Variables with zero posterior variance
 * (Σ_jj ≤ 1e-24·max Σ_kk, e.g. a constant column of X) are set aside before factorising and get KLD 0
 * (info reports the pseudo-inverse, as Σ is singular). When every KLD is 0, RATE is uniform and Δ = 0;
 * a KLD that overflows is SA_ERR_NUMERICAL. No NaN is ever returned.
 *
 * Errors: SA_ERR_NULL_POINTER, SA_ERR_INVALID_ARGUMENT (sizes; a non-symmetric V_F, esa_cov or W_cov;
 * empty groups; a group containing a nullified variable; nullify listing every variable),
 * SA_ERR_SHAPE, SA_ERR_NON_FINITE (NaN/Inf anywhere in the inputs), SA_ERR_OUT_OF_RANGE (a nullify or
 * group index outside 0..p−1), SA_ERR_UNKNOWN_ENUM (projection), SA_ERR_NUMERICAL (LAPACK failure,
 * overflow, X without variation).
 * ------------------------------------------------------------------------------------------------- */

/** How the effect-size analogue β̃ is formed from the outputs f. */
typedef enum sa_projection {
    SA_PROJECTION_COVARIANCE = 0,    /**< β̃ = X_cᵀ(f − f̄)/(n−1) (default; suited to collinear inputs) */
    SA_PROJECTION_PSEUDOINVERSE = 1  /**< β̃ = X⁺ f (singular values below max(n,p)·ε·s₁ dropped) */
} sa_projection;

/** RATE from the effect-size posterior itself: esa_mean (classes × p) and esa_cov (classes × p × p,
 *  symmetric). */
int sa_rate_from_esa(int64_t classes, int64_t p, const double *esa_mean, const double *esa_cov,
                     int exact_kld, const int64_t *nullify, int64_t nullify_count,
                     const int64_t *group_members, const int64_t *group_offsets, int64_t group_count,
                     double jitter,
                     double *rate, double *kld, double *delta, double *ess, int64_t *info);

/** RATE from a Gaussian posterior over the outputs: X (n × p), M_F (classes × n), V_F (classes × n × n,
 *  symmetric). μ = P M_F, Σ = P V_F Pᵀ. */
int sa_rate_from_gaussian(int64_t classes, int64_t n, int64_t p, const double *X, const double *M_F,
                          const double *V_F, int projection, int64_t rank,
                          int exact_kld, const int64_t *nullify, int64_t nullify_count,
                          const int64_t *group_members, const int64_t *group_offsets, int64_t group_count,
                          double jitter,
                          double *rate, double *kld, double *delta, double *ess, int64_t *info,
                          double *esa_mean);

/** RATE from posterior draws of the outputs: X (n × p), f_draws (classes × draws × n, draws ≥ 2).
 *  μ and Σ are the sample mean and covariance (denominator draws − 1) of β̃ = P f; with fewer draws than
 *  variables Σ is singular and the pseudo-inverse is used (info[2c+1] = 1). */
int sa_rate_from_draws(int64_t classes, int64_t draws, int64_t n, int64_t p, const double *X,
                       const double *f_draws, int projection, int64_t rank,
                       int exact_kld, const int64_t *nullify, int64_t nullify_count,
                       const int64_t *group_members, const int64_t *group_offsets, int64_t group_count,
                       double jitter,
                       double *rate, double *kld, double *delta, double *ess, int64_t *info,
                       double *esa_mean);

/** RATE for a Gaussian posterior over a network's last Dense layer, f_c = H w_c + b_c with
 *  w_c ∼ N(W_mean[:, c], W_cov[c]): X (n × p), H (n × h, the penultimate features), W_mean (h × classes),
 *  W_cov (classes × h × h, symmetric positive semi-definite), b (classes, or NULL for 0).
 *  V_F = H Σ_W Hᵀ is never formed: Σ = (PH) Σ_W (PH)ᵀ. */
int sa_rate_last_layer(int64_t classes, int64_t n, int64_t p, int64_t h, const double *X, const double *H,
                       const double *W_mean, const double *W_cov, const double *b,
                       int projection, int64_t rank,
                       int exact_kld, const int64_t *nullify, int64_t nullify_count,
                       const int64_t *group_members, const int64_t *group_offsets, int64_t group_count,
                       double jitter,
                       double *rate, double *kld, double *delta, double *ess, int64_t *info,
                       double *esa_mean);

/* Bayesian last layer: a Gaussian posterior over a trained network's final Dense layer f = H W + b, fitted
 * on its penultimate features H (n × h), to feed sa_rate_last_layer. */

/** Bayesian linear regression of each column of y (n × outputs) on H (n × h): y = H w + b + ε,
 *  ε ∼ N(0, 1/β), w ∼ N(0, I/α), with α and β maximising the evidence (MacKay's fixed point; H and y are
 *  centred, b = ȳ − H̄ m). Stops when α and β change by less than tol (relative) or fails with
 *  SA_ERR_NUMERICAL after max_iter iterations. Outputs: W_mean (h × outputs), W_cov (outputs × h × h,
 *  (αI + βHcᵀHc)⁻¹), b, noise_precision (β), prior_precision (α) (outputs each). n ≥ 3. */
int sa_bayesian_last_layer_regression(int64_t n, int64_t h, int64_t outputs, const double *H, const double *y,
                                      int64_t max_iter, double tol,
                                      double *W_mean, double *W_cov, double *b,
                                      double *noise_precision, double *prior_precision);

/** Laplace approximation of softmax (multinomial logistic) regression of labels (n int64 in
 *  0..classes−1, classes ≥ 2) on H (n × h): prior N(0, I/prior_precision) on the weights and
 *  N(0, 1/(1e-4·prior_precision)) on the biases; the MAP by Newton's method (stops when the largest
 *  gradient entry is below tol; SA_ERR_NUMERICAL after max_iter iterations); the covariance is the inverse
 *  Hessian at the MAP. Outputs: W_mean (h × classes), W_cov (classes × h × h: the weight block of class c),
 *  b (classes). A label out of range is SA_ERR_OUT_OF_RANGE. */
int sa_bayesian_last_layer_classification(int64_t n, int64_t h, int64_t classes, const double *H,
                                          const int64_t *labels, double prior_precision, int64_t max_iter,
                                          double tol, double *W_mean, double *W_cov, double *b);

#ifdef __cplusplus
}
#endif

#endif /* SWIFTATTR_H */
