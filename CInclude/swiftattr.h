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

/* @@RATE@@ */

#ifdef __cplusplus
}
#endif

#endif /* SWIFTATTR_H */
