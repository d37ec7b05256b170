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
 *  - Limits (each violation is an error, never a crash or an unbounded allocation): element counts up to
 *    2^31 * 64; kernel, stride, padding and dilation up to 65536; a layer's output up to 2^30 values per
 *    example; a computation needing more than 2^30 floats (4 GiB) of working memory for one example fails
 *    with SA_ERR_OUT_OF_MEMORY; n_steps up to 2^20 (Riemann rules) or 4096 (Gauss-Legendre); n_samples up
 *    to 2^20; model files must be regular files of at most 16 GiB. A result that is not finite because
 *    the model's float32 arithmetic overflowed is reported as SA_ERR_NUMERICAL, never returned.
 *  - Inputs are batch-first: a batch of n examples of the model's input shape (e.g. n×C×H×W) is
 *    n * input_size contiguous floats, where sa_model_size_at(model, 0, &input_size).
 */
#ifndef SWIFTATTR_H
#define SWIFTATTR_H

#include <stddef.h>
#include <stdint.h>

/* SA_API marks every function of the interface (as SQLITE_API and LLAMA_API do): default visibility
 * under GCC and Clang, so the symbols stay exported from a library built with -fvisibility=hidden;
 * dllexport/dllimport on Windows (define SA_BUILD when building the DLL, SA_STATIC when linking a static
 * library). Define SA_API before including this header to override it. */
#ifndef SA_API
#  if defined(_WIN32) || defined(__CYGWIN__)
#    if defined(SA_STATIC)
#      define SA_API
#    elif defined(SA_BUILD)
#      define SA_API __declspec(dllexport)
#    else
#      define SA_API __declspec(dllimport)
#    endif
#  elif defined(__GNUC__) || defined(__clang__)
#    define SA_API __attribute__((visibility("default")))
#  else
#    define SA_API
#  endif
#endif

/* The interface version this header declares; sa_version() returns the version the library implements.
 * It is raised by every incompatible change of a declaration, an enum value or a struct layout, so a
 * program checks `sa_version() == SA_VERSION` once at start-up (the Python package does on import).
 * 2: the RATE functions take a `const sa_rate_options *`. */
#define SA_VERSION 3

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
    SA_ERR_CANCELLED = -13,        /**< the progress handler asked the call to stop (sa_set_progress_handler) */
    SA_ERR_INTERNAL = -99          /**< a bug in swiftattr: please report it */
} sa_status;

/** The calling thread's message for its last failed call ("" if none). Valid until the thread's next
 *  failing call; never NULL. */
SA_API const char *sa_last_error(void);

/** The interface version the library implements: SA_VERSION of the header it was built with. */
SA_API int sa_version(void);

/* ---------------------------------------------------------------------------------------------------
 * Build information and threads
 * ------------------------------------------------------------------------------------------------- */

/** What this build runs on, as one JSON object: "version", "abi", "blas" ("scipy-openblas32" or
 *  "system-openblas"), "blas_version", "blas_core" (the kernel OpenBLAS chose for this CPU, e.g.
 *  "SkylakeX", "Haswell", "Zen"; "Prescott" when it does not know the CPU), "blas_config",
 *  "blas_kernel_generic" (true when that kernel lacks AVX2 on a CPU that has it: GEMMs then run at a
 *  third of the CPU's speed or less), "threads", "processors", "threads_env_ignored", "cpu",
 *  "cpu_avx2", "arch". The string belongs to the library and stays valid until the calling thread's
 *  next sa_build_info call; never NULL. Quote it with every benchmark figure. */
SA_API const char *sa_build_info(void);

/** Sets the library's thread count (1 to 256) for calls that start afterwards; a running call keeps the
 *  count it started with. The default is the environment variable SWIFTATTR_NUM_THREADS when it is an
 *  integer in 1..256, else the number of online processors. Chunked methods run that many workers, each
 *  with single-threaded GEMMs; unchunked work (RATE's factorisations) runs OpenBLAS on that many threads.
 *  The library's OpenBLAS is its own copy: no BLAS setting of the process is touched. Results do not
 *  depend on the count beyond float32 rounding, and one count gives bit-identical results run to run.
 *  Returns SA_ERR_INVALID_ARGUMENT outside 1..256. */
SA_API int sa_set_num_threads(int n);

/** The library's thread count (see sa_set_num_threads). */
SA_API int sa_get_num_threads(void);

/* ---------------------------------------------------------------------------------------------------
 * Models
 *
 * A model is a per-example input shape and a directed acyclic graph of nodes (layers), each checked on
 * addition to fit the values it reads (shape errors name the node). Values are numbered: value 0 is the
 * model input and value j + 1 the output of node j (0-based); the model's output is the last value.
 * Every sa_model_add_* call appends one node; a single-input node reads the last value unless
 * sa_model_set_input chose another one just before, and add/concat nodes name the values they read. A
 * chain (each node reading the one before) is the common case: call sa_model_add_* in order. Weights use
 * PyTorch's layouts, so tensors copy over from torch.nn unchanged. Per-example shapes: [F] features,
 * [C, L] sequences, [C, H, W] images.
 *
 * A residual block, x → conv → bn → relu → conv → bn → (+ x) → relu, with x the value v:
 *     sa_model_add_conv2d(m, ...);            node j     (reads v when v is the last value, else
 *                                                         sa_model_set_input(m, v) first)
 *     sa_model_add_batchnorm(m, ...); sa_model_add_activation(m, SA_LAYER_RELU, 0);
 *     sa_model_add_conv2d(m, ...); sa_model_add_batchnorm(m, ...);   the last value is now b
 *     int64_t reads[2] = {b, v}; sa_model_add_add(m, reads, 2);
 *     sa_model_add_activation(m, SA_LAYER_RELU, 0);
 * ------------------------------------------------------------------------------------------------- */

/** Opaque model handle. */
typedef struct sa_model sa_model;

/** Layer kinds (also the codes stored in model files). */
typedef enum sa_layer_kind {
    SA_LAYER_DENSE = 0, SA_LAYER_CONV1D = 1, SA_LAYER_CONV2D = 2,
    SA_LAYER_MAXPOOL1D = 3, SA_LAYER_MAXPOOL2D = 4, SA_LAYER_AVGPOOL1D = 5, SA_LAYER_AVGPOOL2D = 6,
    SA_LAYER_GLOBAL_AVGPOOL = 7, SA_LAYER_FLATTEN = 8,
    SA_LAYER_RELU = 9,        /**< max(x, 0) */
    SA_LAYER_LEAKY_RELU = 10, /**< parameter: negative slope */
    SA_LAYER_ELU = 11,        /**< parameter: alpha */
    SA_LAYER_SOFTPLUS = 12,   /**< parameter: beta > 0; log(1 + exp(beta x)) / beta */
    SA_LAYER_SIGMOID = 13, SA_LAYER_TANH = 14,
    SA_LAYER_SOFTMAX = 15,    /**< over the example's values; final layer only */
    SA_LAYER_BATCHNORM = 16, SA_LAYER_DROPOUT = 17,
    SA_LAYER_ADD = 18,        /**< elementwise sum of two or more values of one shape */
    SA_LAYER_CONCAT = 19,     /**< concatenation along the first per-example axis (features, channels) */
    SA_LAYER_EMBEDDING = 20,  /**< token ids [L] -> [L, E]; node 0 only (sa_model_add_embedding) */
    SA_LAYER_LSTM = 21,       /**< one-layer unidirectional LSTM, [L, E] -> [H] or [L, H] (sa_model_add_lstm) */
    SA_LAYER_RESHAPE = 22     /**< the same values under another per-example shape */
} sa_layer_kind;

/** Creates an empty model whose examples have shape input_shape[0..ndim) (ndim 1 to 3). Free it with
 *  sa_model_free. */
SA_API int sa_model_create(const int64_t *input_shape, int64_t ndim, sa_model **out_model);

/** Frees a model (NULL is ignored). Not to be called while another thread uses the model. */
SA_API void sa_model_free(sa_model *model);

/** Appends y = W x + b. weight: out_features × in_features; bias: out_features floats, or NULL for none.
 *  The input must be flat ([F], add a Flatten after convolutions). The model keeps a copy of the weights
 *  (as every sa_model_add_* does); when it cannot be allocated the call returns SA_ERR_OUT_OF_MEMORY. */
SA_API int sa_model_add_dense(sa_model *model, const float *weight, int64_t out_features, int64_t in_features,
                              const float *bias);

/** Appends a 1-D convolution over [C, L]. weight: out × in × kernel_size; bias: out floats or NULL. */
SA_API int sa_model_add_conv1d(sa_model *model, const float *weight, int64_t out_channels, int64_t in_channels,
                               int64_t kernel_size, const float *bias, int64_t stride, int64_t padding,
                               int64_t dilation);

/** Appends a 2-D convolution over [C, H, W]. weight: out × in × kernel_h × kernel_w; bias: out or NULL. */
SA_API int sa_model_add_conv2d(sa_model *model, const float *weight, int64_t out_channels, int64_t in_channels,
                               int64_t kernel_h, int64_t kernel_w, const float *bias,
                               int64_t stride_h, int64_t stride_w, int64_t padding_h, int64_t padding_w,
                               int64_t dilation_h, int64_t dilation_w);

/** Appends max pooling over [C, L] (padding counts as -infinity, at most half the kernel, as in PyTorch). */
SA_API int sa_model_add_maxpool1d(sa_model *model, int64_t kernel_size, int64_t stride, int64_t padding);

/** Appends max pooling over [C, H, W] (padding as sa_model_add_maxpool1d, per dimension). */
SA_API int sa_model_add_maxpool2d(sa_model *model, int64_t kernel_h, int64_t kernel_w, int64_t stride_h,
                                  int64_t stride_w, int64_t padding_h, int64_t padding_w);

/** Appends average pooling over [C, L] (zero padding counted in the divisor: PyTorch's
 *  count_include_pad=True). */
SA_API int sa_model_add_avgpool1d(sa_model *model, int64_t kernel_size, int64_t stride, int64_t padding);

/** Appends average pooling over [C, H, W] (padding as sa_model_add_avgpool1d, per dimension). */
SA_API int sa_model_add_avgpool2d(sa_model *model, int64_t kernel_h, int64_t kernel_w, int64_t stride_h,
                                  int64_t stride_w, int64_t padding_h, int64_t padding_w);

/** Appends a mean over every position of each channel: [C, ...] -> [C]. */
SA_API int sa_model_add_global_avgpool(sa_model *model);

/** Appends a reshape of each example to [F]. */
SA_API int sa_model_add_flatten(sa_model *model);

/** Appends a view of each example under another shape of equal size (1 to 3 dimensions, like
 *  nn.Unflatten or ONNX Reshape): identity on the values, so every method passes signals through it. */
SA_API int sa_model_add_reshape(sa_model *model, const int64_t *shape, int64_t ndim);

/** Appends an activation: kind is one of SA_LAYER_RELU ... SA_LAYER_SOFTMAX; parameter is the
 *  LeakyReLU slope, the ELU alpha or the Softplus beta (ignored otherwise). */
SA_API int sa_model_add_activation(sa_model *model, int kind, float parameter);

/** Appends batch normalisation with inference statistics: weight (gamma) * (x - mean)/sqrt(var + eps) + bias
 *  per channel (dimension 0 of the example). weight and bias may be NULL (1 and 0). */
SA_API int sa_model_add_batchnorm(sa_model *model, int64_t channels, const float *weight, const float *bias,
                                  const float *running_mean, const float *running_var, float eps);

/** Appends dropout: the identity at inference (p in [0, 1) is recorded only). */
SA_API int sa_model_add_dropout(sa_model *model, float p);

/* Sequence models. A token model has input shape {L} (ids) and an Embedding as node 0: the ids are passed
 * as float values (exact below 2^24) and every call checks they are integers in [0, num_embeddings)
 * (SA_ERR_OUT_OF_RANGE naming the argument and the flat index). Only the Embedding reads the ids, so its
 * output (value 1, L x E per example) is where token attributions are taken: every attribution call
 * (sa_gradient, sa_saliency, sa_input_x_gradient, sa_integrated_gradients, sa_expected_gradients,
 * sa_smoothgrad, sa_deeplift, sa_deepshap) on a token model attributes the embedding output and sums over
 * the embedding axis, writing n * L floats (one per token); its baselines and references are token ids
 * (n_baselines = 0 means zero embedding vectors, not id 0), SmoothGrad's noise is added to the embedding
 * vectors. For attributions per embedding coordinate (n * L * E) or baselines given as embedding vectors,
 * run the same call on sa_model_embedding_rest's model with the inputs embedded by sa_embed. The
 * Hessian calls on token models: see their section; they return SA_ERR_INVALID_ARGUMENT for LSTM models. */

/** Appends an Embedding (torch.nn.Embedding): weight is num_embeddings x embedding_dim (< 2^24 rows).
 *  It must be node 0 of a model whose input shape is {L}; per example [L] ids -> [L, embedding_dim]. */
SA_API int sa_model_add_embedding(sa_model *model, const float *weight, int64_t num_embeddings, int64_t embedding_dim);

/** Appends a one-layer unidirectional batch-first LSTM (torch.nn.LSTM with num_layers=1,
 *  bidirectional=False, batch_first=True), PyTorch's layout and gate order i, f, g, o: weight_ih is
 *  4*hidden_size x input_size, weight_hh 4*hidden_size x hidden_size, bias_ih and bias_hh 4*hidden_size
 *  each (either may be NULL: zeros). It reads [L, input_size] per example and writes the last hidden
 *  state [hidden_size] (return_sequences = 0: torch's output[:, -1] or h_n[-1]) or every hidden state
 *  [L, hidden_size] (return_sequences = 1: torch's output). h_0 = c_0 = 0. */
SA_API int sa_model_add_lstm(sa_model *model, const float *weight_ih, const float *weight_hh, const float *bias_ih,
                             const float *bias_hh, int64_t input_size, int64_t hidden_size, int return_sequences);

/** For a token model: a new model (free it with sa_model_free) of the nodes after the Embedding, whose
 *  input (shape {L, E}) is the embedding output. SA_ERR_INVALID_ARGUMENT when node 0 is no Embedding. */
SA_API int sa_model_embedding_rest(const sa_model *model, sa_model **out_model);

/** For a token model: the embedding vectors of n examples of ids x (n * L floats, checked): out receives
 *  n * L * E floats. */
SA_API int sa_embed(const sa_model *model, const float *x, int64_t n, float *out);

/** Makes the next single-input node (the next sa_model_add_* call other than add/concat) read value
 *  `value` (0 = the model input, j + 1 = the output of node j) instead of the last value. A value may be
 *  read by any number of nodes (fan-out). SA_ERR_OUT_OF_RANGE for a value that does not exist yet. */
SA_API int sa_model_set_input(sa_model *model, int64_t value);

/** Appends an elementwise sum of the n_inputs (≥ 2) values inputs[0..n_inputs), which must have one
 *  shape: a residual connection. */
SA_API int sa_model_add_add(sa_model *model, const int64_t *inputs, int64_t n_inputs);

/** Appends the concatenation of the n_inputs (≥ 2) values inputs[0..n_inputs) along their first
 *  per-example axis (the features of [F] values, the channels of [C, L] and [C, H, W] values); the other
 *  axes must agree. */
SA_API int sa_model_add_concat(sa_model *model, const int64_t *inputs, int64_t n_inputs);

/** The values node `node` (0-based) reads: *count receives their number, out[0..*count) the values when
 *  capacity is large enough (else SA_ERR_BUFFER_TOO_SMALL, with *count set). */
SA_API int sa_model_node_inputs(const sa_model *model, int64_t node, int64_t *out, int64_t capacity, int64_t *count);

/** The per-example input shape: shape must hold 3 values; *ndim receives the number used. */
SA_API int sa_model_input_shape(const sa_model *model, int64_t *shape, int64_t *ndim);

/** Number of layers. */
SA_API int sa_model_num_layers(const sa_model *model, int64_t *count);

/** Floats per example of value `layer` (0 = the model input, j + 1 = the output of node j, num_layers =
 *  the output; in a chain, the input of layer `layer`). */
SA_API int sa_model_size_at(const sa_model *model, int64_t layer, int64_t *size);

/** The per-example shape of value `value` (numbered as in sa_model_size_at; num_layers = the output,
 *  whose shape is what sa_forward writes per example): shape must hold 3 values; *ndim receives the
 *  number used. */
SA_API int sa_model_shape_at(const sa_model *model, int64_t value, int64_t *shape, int64_t *ndim);

/** The sa_layer_kind of layer `layer` (0-based). */
SA_API int sa_model_layer_kind(const sa_model *model, int64_t layer, int *kind);

/** Writes the model to `path` in the swiftattr model format: "SAMODEL1" (a chain) or "SAMODEL2" (a
 *  graph), then little-endian u32 ndim, ndim x i64 input shape, u32 node count, and per node: (SAMODEL2
 *  only) u32 n + n x i64 the values it reads, u32 kind, u32 n + n x i64 integers,
 *  u32 n + n x f32 scalars, u32 n tensors each as u64 count + count x f32 (PyTorch layouts).
 *  A regular file is replaced atomically: the model is written to a temporary file in the same
 *  directory (every write, the fsync and the close checked) and renamed over `path`, so on failure (disk
 *  full, a file-size limit) the old file is left intact, no temporary remains, and the call returns
 *  SA_ERR_IO naming the path. A symbolic link is written through; a device or FIFO (e.g. /dev/null) is
 *  written in place, every write checked. */
SA_API int sa_model_save(const sa_model *model, const char *path);

/** Reads a model written by sa_model_save (or Python's Network.save); every field is validated. The path
 *  is opened without blocking and must be a regular file (a FIFO or device is SA_ERR_IO at once); the
 *  file is parsed as it is read, so a file that is not a model fails at its first 8 bytes (SA_ERR_FORMAT),
 *  and a tensor that cannot be allocated is SA_ERR_OUT_OF_MEMORY. */
SA_API int sa_model_load(const char *path, sa_model **out_model);

/* ---------------------------------------------------------------------------------------------------
 * Forward pass and gradient attributions
 *
 * x holds n examples (n * input_size floats, input_size = sa_model_size_at(model, 0)); attributions are
 * written to `out`, n * input_size floats. `target` points to n_target class indices: 1 (used for every
 * example) or n (one per example), each in [0, output_size). internal_batch_size bounds how many rows
 * (example x step) are evaluated at once; <= 0 picks a size for a 64 MB working set. Stochastic methods
 * take a seed: the same seed gives the same numbers.
 *
 * Memory: the per-example functions (sa_forward, sa_forward_to_layer, sa_gradient, sa_saliency,
 * sa_input_x_gradient, sa_integrated_gradients, sa_deeplift, sa_deepshap) read the caller's buffers in
 * chunks of rows and write each chunk's results straight into `out`, so their memory is bounded
 * whatever n; sa_expected_gradients and sa_smoothgrad copy x whole. An allocation that fails is
 * SA_ERR_OUT_OF_MEMORY naming the argument, never an abort. A NaN or Inf in an input is reported with
 * the argument's name and its flat index in the caller's array; values are scanned once.
 * ------------------------------------------------------------------------------------------------- */

/** Integration rules of sa_integrated_gradients (Captum's names). */
typedef enum sa_ig_method {
    SA_IG_RIEMANN_LEFT = 0,      /**< alpha_k = k/n */
    SA_IG_RIEMANN_RIGHT = 1,     /**< alpha_k = (k+1)/n */
    SA_IG_RIEMANN_MIDDLE = 2,    /**< alpha_k = (k+1/2)/n */
    SA_IG_RIEMANN_TRAPEZOID = 3, /**< alpha_k = k/(n-1), halved end weights (n >= 2) */
    SA_IG_GAUSS_LEGENDRE = 4     /**< Gauss-Legendre nodes on [0, 1] (Captum's default) */
} sa_ig_method;

/** SmoothGrad aggregations. */
typedef enum sa_nt_type {
    SA_NT_SMOOTHGRAD = 0,    /**< mean of the gradients */
    SA_NT_SMOOTHGRAD_SQ = 1, /**< mean of the squared gradients */
    SA_NT_VARGRAD = 2        /**< variance of the gradients */
} sa_nt_type;

/** Network outputs: out receives n * output_size floats (output_size = sa_model_size_at(model, num_layers)). */
SA_API int sa_forward(const sa_model *model, const float *x, int64_t n, float *out);

/** Value `layer` (0...num_layers; in a chain, the input of layer `layer`): out receives
 *  n * sa_model_size_at(model, layer) floats. */
SA_API int sa_forward_to_layer(const sa_model *model, const float *x, int64_t n, int64_t layer, float *out);

/** Vector-Jacobian product: out = d<cotangent, f(x)>/dx, cotangent of n * output_size floats. */
SA_API int sa_gradient(const sa_model *model, const float *x, int64_t n, const float *cotangent, float *out);

/** Saliency: d f_target / dx, or its absolute value when absolute != 0. */
SA_API int sa_saliency(const sa_model *model, const float *x, int64_t n, const int64_t *target, int64_t n_target,
                       int absolute, float *out);

/** Input x gradient: x * d f_target / dx. */
SA_API int sa_input_x_gradient(const sa_model *model, const float *x, int64_t n, const int64_t *target,
                               int64_t n_target, float *out);

/** Integrated Gradients (Sundararajan et al. 2017): (x - x') * integral_0^1 grad f(x' + a (x - x')) da with
 *  n_steps nodes of `method` (an sa_ig_method). baselines: n_baselines = 0 (zeros; pointer may be NULL),
 *  1 (one example, broadcast) or n. delta (may be NULL) receives n floats: sum(phi) - (f(x) - f(x')). */
SA_API int sa_integrated_gradients(const sa_model *model, const float *x, int64_t n, const float *baselines,
                                   int64_t n_baselines, const int64_t *target, int64_t n_target, int64_t n_steps,
                                   int method, int64_t internal_batch_size, float *out, float *delta);

/** The path-integrated gradient integral_0^1 grad f(x' + a (x - x')) da itself: sa_integrated_gradients
 *  before the product with x - x' (Captum's multiply_by_inputs=False), same arguments; delta is that of the
 *  attributions. Token models: SA_ERR_INVALID_ARGUMENT (call it on sa_model_embedding_rest's model). */
SA_API int sa_path_integrated_gradients(const sa_model *model, const float *x, int64_t n, const float *baselines,
                                        int64_t n_baselines, const int64_t *target, int64_t n_target, int64_t n_steps,
                                        int method, int64_t internal_batch_size, float *out, float *delta);

/** Expected Gradients (Erion et al.): E over references x' (uniform over the n_references rows of
 *  `references`, n_references * input_size floats) and a ~ U(0,1) of (x - x') * grad f(x' + a (x - x')),
 *  with n_samples draws per example.
 *  Seeded draws: the stream of example i (row i of x) is keyed by (seed, first_example + i, sample index)
 *  through a counter-based generator (Philox4x32-10), and by nothing else: not by internal_batch_size or
 *  the thread count. first_example (>= 0) is the index of row 0 in the whole batch, so a batch split into
 *  calls of rows [a, b) with first_example = a gives the one-call numbers up to float32 rounding. */
SA_API int sa_expected_gradients(const sa_model *model, const float *x, int64_t n, const float *references,
                                 int64_t n_references, const int64_t *target, int64_t n_target, int64_t n_samples,
                                 uint64_t seed, int64_t first_example, int64_t internal_batch_size, float *out);

/** SmoothGrad (Smilkov et al. 2017): gradients at x + N(0, stdev^2) aggregated by nt_type (an sa_nt_type)
 *  over n_samples draws per example. stdev is the absolute noise scale (finite, >= 0). Seeded draws: as
 *  sa_expected_gradients, keyed by (seed, first_example + i, sample index). */
SA_API int sa_smoothgrad(const sa_model *model, const float *x, int64_t n, const int64_t *target, int64_t n_target,
                         int nt_type, int64_t n_samples, float stdev, uint64_t seed, int64_t first_example,
                         int64_t internal_batch_size, float *out);

/* ---------------------------------------------------------------------------------------------------
 * DeepLIFT and DeepSHAP (Shrikumar, Greenside, Kundaje 2017)
 *
 * Contributions C of every input to the difference from reference of one output,
 * delta_t = f_t(x) - f_t(x0), with sum(C) = delta_t (summation-to-delta). Multipliers m = C / (x - x0)
 * propagate backwards by the chain rule: affine layers by the Linear rule (Dense, Conv, BatchNorm,
 * average pooling; split into positive and negative parts where RevealCancel needs them),
 * nonlinearities by Rescale (m = dy/dx, the derivative at the reference when |dx| < 1e-7) or
 * RevealCancel, max-pooling by sa_maxpool_rule. Add and concat nodes are linear: their multipliers pass
 * unchanged to each input (concat: each its slice), and a value read by several nodes sums its readers'
 * multipliers, so summation-to-delta holds on every graph. A final Softmax is attributed at its logits,
 * each contribution minus its mean over the classes (so sum(C) = dz_t - mean_j dz_j).
 * ------------------------------------------------------------------------------------------------- */

/** Rules for the elementwise nonlinearities. */
typedef enum sa_deeplift_rule {
    SA_DEEPLIFT_RESCALE = 0,      /**< m = (f(x) - f(x0)) / (x - x0) (Captum's DeepLift) */
    SA_DEEPLIFT_REVEALCANCEL = 1, /**< positive and negative parts of dx get separate multipliers */
    SA_DEEPLIFT_GENOMICS = 2      /**< Rescale after convolutions, RevealCancel after dense layers */
} sa_deeplift_rule;

/** Rules for max-pooling. */
typedef enum sa_maxpool_rule {
    SA_MAXPOOL_GRADIENT = 0, /**< route to the argmax of the input (the authors' package; exact when the
                                  references within each window are equal) */
    SA_MAXPOOL_CROSSMAX = 1  /**< Captum's cross-max rule: exact summation-to-delta for any reference */
} sa_maxpool_rule;

/** DeepLIFT of output target for n examples x. baselines: n_baselines = 0 (zeros; pointer may be NULL),
 *  1 (one example, shared) or n. target: n_target = 1 or n class indices. rule: an sa_deeplift_rule;
 *  maxpool: an sa_maxpool_rule. multiply_by_inputs != 0 writes contributions m * (x - x0), 0 writes the
 *  multipliers m (Captum's multiply_by_inputs=False). internal_batch_size: examples per chunk, <= 0 to
 *  choose (memory bound). out: n * input_size floats. delta (may be NULL): n floats,
 *  sum(contributions) - delta_t (computed from contributions whatever multiply_by_inputs). */
SA_API int sa_deeplift(const sa_model *model, const float *x, int64_t n, const float *baselines,
                       int64_t n_baselines, const int64_t *target, int64_t n_target, int rule, int maxpool,
                       int multiply_by_inputs, int64_t internal_batch_size, float *out, float *delta);

/* ---------------------------------------------------------------------------------------------------
 * ACD: Agglomerative Contextual Decomposition (Singh, Murdoch, Yu 2019), hierarchies of interactions
 *
 * The hierarchy of one example, built as the authors' acd package builds it: units are positions of a
 * sequence (1-D, input [L] or [C, L]) or blocks of block_size × block_size pixels (2-D, input [C, H, W];
 * the last blocks are cut); a unit's mask covers all its channels. Units are scored alone; those whose
 * score (1-D: |score|) reaches the percentile_include percentile are selected; each iteration labels the
 * selected units into components (1-D: maximal runs; 2-D: 8-connected, labels carried from level to
 * level), scores each component and its neighbouring units by s(comp ∪ unit) − s(comp), and selects more
 * (1-D: for 5, 4, 3, 2, 1 candidates left the percentile is 59, 49, 59, 49, 0; 2-D: 15 lower once a third
 * is selected, and an unselected block with 3 selected 4-neighbours joins). 2-D then merges, from the last
 * iteration's components, the pair with the largest s(c1 ∪ c2) − max(s1, s2) until one remains. A level
 * is recorded per iteration and per merge. Every candidate of one step is scored in one batched call.
 *
 * Scores: sa_acd_1d and sa_acd_2d score a group by Contextual Decomposition of the model at x (one
 * example): its relevant logit of class target, minus the other class's for two classes (score_rule, an
 * sa_acd_score_rule). The _scored variants call the caller's sa_group_scorer instead.
 *
 * Arguments: percentile_include in [0, 100] (acd's examples use 99.5); block_size >= 1 (acd's sweep_dim);
 * max_iterations >= 0 (0: until one component covers the sequence, or every block is selected).
 * Outputs (caller-allocated; n_units and max_levels from sa_acd_capacity for the input's [L] or [H, W]):
 *   labels        max_levels × n_units int32: the component label of each unit per level (0: none);
 *                 2-D units are the block grid, row-major; labels are in 1..n_units;
 *   scores        max_levels × n_units floats: the score of label k at [level][k − 1], NaN if absent;
 *   unit_scores   n_units floats: each unit's score alone;  full_score: the whole input's score;
 *   merges        (2-D) (n_units − 1) × 2 int32: the final merges (kept, absorbed); merge k gives level
 *                 n_iteration_levels + k;  merge_gains (2-D) n_units − 1 floats, s(c1 ∪ c2) − max(s1, s2);
 *   n_levels      the number of levels written;  n_iteration_levels (2-D) those from the iterations.
 * ------------------------------------------------------------------------------------------------- */

/** How a group's relevant logits become its score. */
typedef enum sa_acd_score_rule {
    SA_ACD_SCORE_AUTO = 0,              /**< two classes: target − other; otherwise the target */
    SA_ACD_SCORE_TARGET = 1,            /**< the target's relevant logit */
    SA_ACD_SCORE_TARGET_MINUS_OTHER = 2 /**< target − other (two-class models only) */
} sa_acd_score_rule;

/** A caller's batched group scorer: masks is n_masks × mask_size floats (1: in the group, 0: not;
 *  mask_size = the input's C × L or C × H × W); it writes n_masks finite scores and returns 0, or a
 *  non-zero value to stop the agglomeration (which then fails with SA_ERR_INVALID_ARGUMENT). */
typedef int (*sa_group_scorer)(void *context, const float *masks, int64_t n_masks, int64_t mask_size, float *scores);

/** The buffer sizes of a hierarchy over dims ([L]: ndim 1, or [H, W]: ndim 2) in blocks of block_size:
 *  n_units = ceil(L / b) or ceil(H / b) · ceil(W / b); max_levels = n_units (1-D) or 2 n_units − 1 (2-D). */
SA_API int sa_acd_capacity(int64_t ndim, const int64_t *dims, int64_t block_size, int64_t *n_units,
                           int64_t *max_levels);

/** ACD of a sequence model (input [L] or [C, L]) at x (one example) for class target. */
SA_API int sa_acd_1d(const sa_model *model, const float *x, int64_t target, int score_rule,
                     double percentile_include, int64_t block_size, int64_t max_iterations, int32_t *labels,
                     float *scores, float *unit_scores, float *full_score, int64_t *n_levels);

/** ACD of a sequence of length positions × channels (mask_size = channels × length, channel-major)
 *  scored by scorer(context, ...). */
SA_API int sa_acd_1d_scored(sa_group_scorer scorer, void *context, int64_t length, int64_t channels,
                            double percentile_include, int64_t block_size, int64_t max_iterations,
                            int32_t *labels, float *scores, float *unit_scores, float *full_score,
                            int64_t *n_levels);

/** ACD of an image model (input [C, H, W]) at x (one example) for class target. */
SA_API int sa_acd_2d(const sa_model *model, const float *x, int64_t target, int score_rule,
                     double percentile_include, int64_t block_size, int64_t max_iterations, int32_t *labels,
                     float *scores, float *unit_scores, float *full_score, int32_t *merges, float *merge_gains,
                     int64_t *n_levels, int64_t *n_iteration_levels);

/** ACD of a channels × height × width image scored by scorer(context, ...). */
SA_API int sa_acd_2d_scored(sa_group_scorer scorer, void *context, int64_t height, int64_t width,
                            int64_t channels, double percentile_include, int64_t block_size,
                            int64_t max_iterations, int32_t *labels, float *scores, float *unit_scores,
                            float *full_score, int32_t *merges, float *merge_gains, int64_t *n_levels,
                            int64_t *n_iteration_levels);

/** DeepSHAP: DeepLIFT averaged over the n_references >= 1 references (n_references * input_size
 *  floats), phi(x) = mean_r C(x, r). (example, reference) pairs run in chunks of internal_batch_size pairs
 *  (<= 0: chosen for a fixed memory budget), so memory does not grow with the number of references.
 *  Other arguments as sa_deeplift; delta (may be NULL): n floats, sum(phi) - (f_t(x) - mean_r f_t(r)). */
SA_API int sa_deepshap(const sa_model *model, const float *x, int64_t n, const float *references,
                       int64_t n_references, const int64_t *target, int64_t n_target, int rule, int maxpool,
                       int multiply_by_inputs, int64_t internal_batch_size, float *out, float *delta);

/* ---------------------------------------------------------------------------------------------------
 * Contextual Decomposition (Murdoch, Liu, Yu 2018; Singh, Murdoch, Yu 2019)
 *
 * Every value of the network is split into a relevant part beta, due to a group of input elements (a
 * mask), and an irrelevant part gamma, with beta + gamma = the value, from beta0 = mask * x and
 * gamma0 = (1 - mask) * x; the rules per node kind are those of the acd package: Dense and Conv apply
 * their weights to both parts and split the bias b elementwise in proportion (|r| + 1e-20) : (|s| + 1e-20)
 * of the two products; BatchNorm as an affine map, beta' = r + |r| / (|r| + |s|) * b (0 where 0/0);
 * average pooling, Flatten and Dropout apply to both; max-pooling gathers both at the argmax of
 * beta + gamma; add sums and concat joins the parts; ReLU, LeakyReLU, ELU and Softplus give
 * beta' = f(beta) - f(0), gamma' = f(beta + gamma) - f(beta); Sigmoid and Tanh average over both orders,
 * beta' = (f(beta) - f(0) + f(beta + gamma) - f(gamma)) / 2; a constant f(0) != 0 (Sigmoid, Softplus) is split
 * as a bias. A network ending in Softmax is decomposed at its logits.
 *
 * Token networks (an Embedding first, input = L token ids): the mask is per position, L values per mask;
 * beta0 = m_t * e(x_t), the embedding vector of position t scaled by its mask value. LSTM (Murdoch 2018, the
 * acd package's cd_text): the gate pre-activations split into W_ih beta_t + W_hh h_rel, W_ih gamma_t +
 * W_hh h_irr and the bias b_ih + b_hh; gates i, g, f through the three-part average over orderings; the
 * cell parts as cd_text forms them, the term i_b * g_b to the relevant cell in proportion w_t (the mask
 * value of position t where the LSTM reads the network input: cd_text's "inside the span"; deeper in a
 * graph, the l1 share of beta in the step's input); the output gate whole. Both LSTM outputs (last state,
 * every state). cd_text scores W_out h without the output bias; here a final Linear splits its bias as
 * every affine layer does, so the whole sequence as the mask gives relevant = the logits (irrelevant 0 up
 * to the 1e-20 share).
 * ------------------------------------------------------------------------------------------------- */

/** Contextual Decomposition of every output for n examples x and n_masks >= 1 masks (n_masks *
 *  input_size floats, shared by every example; 1 marks the group, fractional values split an input
 *  linearly; for a token network input_size = L: one value per position). All (example, mask) pairs run batched, internal_batch_size pairs at a time (<= 0: chosen
 *  for a fixed memory budget). relevant and irrelevant: n * n_masks * output_size floats each, example-major
 *  (example i, mask m at (i * n_masks + m) * output_size); their sum is the output (the logits for a final
 *  Softmax). */
SA_API int sa_contextual_decomposition(const sa_model *model, const float *x, int64_t n, const float *mask,
                                       int64_t n_masks, int64_t internal_batch_size, float *relevant,
                                       float *irrelevant);

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
 * Options (sa_rate_options; NULL for the defaults) are shared by every sa_rate_* function: exact KLD,
 * conditional RATE (nullify), group RATE, jitter, and for the X-based functions the projection and rank.
 *
 * Outputs (caller-allocated; m = options->group_count when it is > 0, p otherwise):
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
 * (info reports the pseudo-inverse, as Σ is singular). When every KLD is 0 — μ = 0, or Σ = 0 altogether
 * (W_cov = 0, V_F = 0, identical draws: no variable has posterior variance, info[2c] = 0) — RATE is
 * uniform, Δ = 0 and ESS = 100. A covariance (esa_cov, V_F,
 * W_cov, as seen through Σ) with an eigenvalue below −1e-8·max|eigenvalue| is not positive
 * semi-definite: SA_ERR_INVALID_ARGUMENT naming it. Every output is checked: a result that overflows
 * (μ, Σ, a KLD) is SA_ERR_NUMERICAL, so no NaN or Inf is ever returned with status 0.
 *
 * Errors: SA_ERR_NULL_POINTER, SA_ERR_INVALID_ARGUMENT (sizes; options->struct_size; a non-symmetric
 * or indefinite V_F, esa_cov or W_cov; empty groups; a group containing a nullified variable; nullify
 * listing every variable), SA_ERR_SHAPE, SA_ERR_NON_FINITE (NaN/Inf anywhere in the inputs),
 * SA_ERR_OUT_OF_RANGE (a nullify or group index outside 0..p−1), SA_ERR_UNKNOWN_ENUM (projection),
 * SA_ERR_NUMERICAL (LAPACK failure, overflow, X without variation).
 * ------------------------------------------------------------------------------------------------- */

/** How the effect-size analogue β̃ is formed from the outputs f. */
typedef enum sa_projection {
    SA_PROJECTION_COVARIANCE = 0,    /**< β̃ = X_cᵀ(f − f̄)/(n−1) (default; suited to collinear inputs) */
    SA_PROJECTION_PSEUDOINVERSE = 1  /**< β̃ = X⁺ f (singular values below max(n,p)·ε·s₁ dropped) */
} sa_projection;

/** Options of the sa_rate_* functions. Start from sa_rate_default_options() and set the fields you need
 *  (llama.cpp's convention); a NULL options pointer means the defaults. The arrays it points to are read
 *  during the call only.
 *
 *  ABI: the layout is fixed for one SA_VERSION. struct_size must equal the library's
 *  sizeof(sa_rate_options), which sa_rate_default_options() sets: a struct from another header than the
 *  library's (or one not started from the defaults) is SA_ERR_INVALID_ARGUMENT, never misread. The struct
 *  is not versioned to grow in place (SQLite's way): the defaults are returned by value, and a grown
 *  struct could not be returned to a program built with the smaller one, so a new field raises
 *  SA_VERSION instead. */
typedef struct sa_rate_options {
    size_t struct_size;           /**< sizeof(sa_rate_options), set by sa_rate_default_options() */
    int exact_kld;                /**< 0 (default) or 1: add ½[Σ_jjΛ_jj − 1 − log(Σ_jjΛ_jj)] to each KLD */
    int projection;               /**< an sa_projection (default SA_PROJECTION_COVARIANCE); used by the
                                       X-based functions, checked and ignored by sa_rate_from_esa */
    int64_t rank;                 /**< 0 (default): automatic (dense path when n ≥ p; low-rank path at the
                                       numerical rank of X when n < p); r > 0: low-rank path with at most
                                       r singular directions of X (truncated SVD; O(p r²) time, O(p r)
                                       memory, no p×p matrix). X-based functions only: 0 for
                                       sa_rate_from_esa */
    double jitter;                /**< ≥ 0 (default 0): jitter·mean(diag Σ) is added to Σ's diagonal
                                       before factorising (dense path), or to the r-dimensional core
                                       (low-rank path) */
    const int64_t *nullify;       /**< nullify_count variable indices (0..p−1), NULL when none: conditional
                                       RATE — condition on these effects being zero as well; their RATE
                                       and KLD are 0 and m = p − (number of distinct nullified variables) */
    int64_t nullify_count;        /**< default 0 */
    const int64_t *group_members; /**< group RATE, one score per group, in CSR form: group g holds
                                       group_members[group_offsets[g] .. group_offsets[g+1]−1]. A group
                                       may not contain a nullified variable. KLD_g = ½ μ_gᵀ(Λ_gg −
                                       Σ_gg⁻¹)μ_g (with the nullified set added to g). */
    const int64_t *group_offsets; /**< group_count+1 entries, starting at 0, strictly increasing (no
                                       empty group) */
    int64_t group_count;          /**< 0 (default, both pointers NULL): per-variable RATE */
} sa_rate_options;

/** The default RATE options (see sa_rate_options), with struct_size set. */
SA_API sa_rate_options sa_rate_default_options(void);

/** RATE from the effect-size posterior itself: esa_mean (classes × p) and esa_cov (classes × p × p,
 *  symmetric). options may be NULL (the defaults). */
SA_API int sa_rate_from_esa(int64_t classes, int64_t p, const double *esa_mean, const double *esa_cov,
                            const sa_rate_options *options,
                            double *rate, double *kld, double *delta, double *ess, int64_t *info);

/** RATE from a Gaussian posterior over the outputs: X (n × p), M_F (classes × n), V_F (classes × n × n,
 *  symmetric). μ = P M_F, Σ = P V_F Pᵀ. options may be NULL (the defaults). */
SA_API int sa_rate_from_gaussian(int64_t classes, int64_t n, int64_t p, const double *X, const double *M_F,
                                 const double *V_F, const sa_rate_options *options,
                                 double *rate, double *kld, double *delta, double *ess, int64_t *info,
                                 double *esa_mean);

/** RATE from posterior draws of the outputs: X (n × p), f_draws (classes × draws × n, draws ≥ 2).
 *  μ and Σ are the sample mean and covariance (denominator draws − 1) of β̃ = P f; with fewer draws than
 *  variables Σ is singular and the pseudo-inverse is used (info[2c+1] = 1). options may be NULL. */
SA_API int sa_rate_from_draws(int64_t classes, int64_t draws, int64_t n, int64_t p, const double *X,
                              const double *f_draws, const sa_rate_options *options,
                              double *rate, double *kld, double *delta, double *ess, int64_t *info,
                              double *esa_mean);

/** RATE for a Gaussian posterior over a network's last Dense layer, f_c = H w_c + b_c with
 *  w_c ∼ N(W_mean[:, c], W_cov[c]): X (n × p), H (n × h, the penultimate features), W_mean (h × classes),
 *  W_cov (classes × h × h, symmetric positive semi-definite), b (classes, or NULL for 0).
 *  V_F = H Σ_W Hᵀ is never formed: Σ = (PH) Σ_W (PH)ᵀ. options may be NULL (the defaults). */
SA_API int sa_rate_last_layer(int64_t classes, int64_t n, int64_t p, int64_t h, const double *X, const double *H,
                              const double *W_mean, const double *W_cov, const double *b,
                              const sa_rate_options *options,
                              double *rate, double *kld, double *delta, double *ess, int64_t *info,
                              double *esa_mean);

/* Bayesian last layer: a Gaussian posterior over a trained network's final Dense layer f = H W + b, fitted
 * on its penultimate features H (n × h), to feed sa_rate_last_layer. */

/** Bayesian linear regression of each column of y (n × outputs) on H (n × h): y = H w + b + ε,
 *  ε ∼ N(0, 1/β), w ∼ N(0, I/α), with α and β maximising the evidence (MacKay's fixed point; H and y are
 *  centred, b = ȳ − H̄ m). Stops when α and β change by less than tol (relative) or fails with
 *  SA_ERR_NUMERICAL after max_iter iterations. Outputs: W_mean (h × outputs), W_cov (outputs × h × h,
 *  (αI + βHcᵀHc)⁻¹), b, noise_precision (β), prior_precision (α) (outputs each). n ≥ 3. */
SA_API int sa_bayesian_last_layer_regression(int64_t n, int64_t h, int64_t outputs, const double *H, const double *y,
                                             int64_t max_iter, double tol,
                                             double *W_mean, double *W_cov, double *b,
                                             double *noise_precision, double *prior_precision);

/** Laplace approximation of softmax (multinomial logistic) regression of labels (n int64 in
 *  0..classes−1, classes ≥ 2) on H (n × h): prior N(0, I/prior_precision) on the weights and
 *  N(0, 1/(1e-4·prior_precision)) on the biases; the MAP by Newton's method (stops when the Newton
 *  decrement λ² = gᵀH⁻¹g satisfies λ²/2 ≤ tol·(1 + |loss|), loss the negative log posterior — λ²/2
 *  estimates the distance to the optimal loss; SA_ERR_NUMERICAL after max_iter iterations, or when
 *  no step decreases the loss); the covariance is the inverse
 *  Hessian at the MAP. Outputs: W_mean (h × classes), W_cov (classes × h × h: the weight block of class c),
 *  b (classes). A label out of range is SA_ERR_OUT_OF_RANGE. */
SA_API int sa_bayesian_last_layer_classification(int64_t n, int64_t h, int64_t classes, const double *H,
                                                 const int64_t *labels, double prior_precision, int64_t max_iter,
                                                 double tol, double *W_mean, double *W_cov, double *b);

/* ---------------------------------------------------------------------------------------------------
 * Integrated Hessians and Expected Hessians (Janizek, Sturmfels, Lee 2020)
 *
 * Pairwise feature interactions over the flattened input (p = input_size):
 *   G_ij = dx_i dx_j  int int a b d2f/dx_i dx_j (x' + a b dx) da db
 *        + [i = j] dx_i int int df/dx_i (x' + a b dx) da db,          dx = x - x',
 * so each row sums to the Integrated Gradients attribution (completeness) for networks whose gradient is
 * continuous (smooth activations, average pooling; a ReLU or max-pool kink is invisible to the Hessian:
 * set softplus_beta to replace every ReLU by Softplus(beta), as the authors do with beta = 10). Gradients
 * and Hessians are exact (forward-over-reverse second-order pass, a final Softmax included), so only the
 * quadrature in t = a b is approximate. Results are symmetric. out receives n * p * p floats (the whole
 * matrix, interaction_index = -1) or n * p floats (row interaction_index of each matrix, computed by
 * Hessian-vector products in O(p) memory per example). softplus_beta = 0: no substitution.
 *
 * Token models (an Embedding first, input shape {L}, embedding_dim E): G is taken at the embedding output
 * (p = L * E there) and summed over both embedding axes, G_tok[i][j] = sum over a in token i, b in token j
 * of G[a][b], so rows sum to the token-level sa_integrated_gradients of the same path. out receives
 * n * L * L floats, or n * L for interaction_index = a token position in [0, L) (the E rows of that token
 * summed, then summed over the embedding axis). Baselines and references are token ids (n_baselines = 0:
 * zero embedding vectors). For G over embedding coordinates (n * L*E * L*E) or baselines given as embedding
 * vectors, call them on sa_model_embedding_rest's model with the inputs embedded by sa_embed. Models with
 * an LSTM return SA_ERR_INVALID_ARGUMENT (not supported by the second-order pass yet).
 * ------------------------------------------------------------------------------------------------- */

/** Quadrature rules of sa_integrated_hessians for int_0^1 h(t) (-ln t) dt (t = a b). */
typedef enum sa_ih_method {
    SA_IH_GAUSS_LEGENDRE = 0, /**< Gauss-Legendre in v after t = v^2 (default; 32 nodes: completeness error
                                   below 1e-4 relative on softplus(beta = 10) networks) */
    SA_IH_GAUSS_LAGUERRE = 1, /**< generalised Gauss-Laguerre (weight u e^-u) after t = e^-u; slow on sharp
                                   curvature, its nodes crowd near t = 0 */
    SA_IH_GRID = 2            /**< path_explain's grid: s = ceil(sqrt(n)) points linspace(0, 1, s) for a and
                                   b, the s^2 products flattened, n kept at round(linspace(0, s^2 - 1, n)),
                                   each weighted 1/n */
} sa_ih_method;

/** Integrated Hessians with n_steps nodes of `method` (an sa_ih_method). baselines: n_baselines = 0 (zeros;
 *  pointer may be NULL), 1 (broadcast) or n. */
SA_API int sa_integrated_hessians(const sa_model *model, const float *x, int64_t n, const float *baselines,
                                  int64_t n_baselines, const int64_t *target, int64_t n_target, int64_t n_steps,
                                  int method, float softplus_beta, int64_t interaction_index,
                                  int64_t internal_batch_size, float *out);

/** Expected Hessians: the mean over n_samples draws of x' (uniform over the n_references rows of
 *  `references`) and a, b ~ U(0, 1) of the integrand above. Seeded draws as sa_expected_gradients: sample k
 *  of row i is keyed by (seed, first_example + i, k) (block 0: a and b, block 1: the reference). */
SA_API int sa_expected_hessians(const sa_model *model, const float *x, int64_t n, const float *references,
                                int64_t n_references, const int64_t *target, int64_t n_target, int64_t n_samples,
                                uint64_t seed, int64_t first_example, float softplus_beta, int64_t interaction_index,
                                int64_t internal_batch_size, float *out);

/** A new model: `model` with every ReLU replaced by Softplus(beta) (beta positive and finite); free it with
 *  sa_model_free. */
SA_API int sa_model_with_softplus(const sa_model *model, float beta, sa_model **out_model);

/** Exact Hessian-vector products H(x_i) v_i of output target_i with respect to the input, and the gradients
 *  (forward-over-reverse, Pearlmutter 1994; O(input_size) memory per example). v: n * input_size floats
 *  (one direction per example). out_hv: n * input_size floats; out_gradient: NULL, or n * input_size floats
 *  receiving grad f_t(x_i). ReLU networks have H = 0 almost everywhere (see sa_model_with_softplus). Models
 *  with an Embedding or LSTM: SA_ERR_INVALID_ARGUMENT. */
SA_API int sa_hessian_vector_product(const sa_model *model, const float *x, int64_t n, const float *v,
                                     const int64_t *target, int64_t n_target, float *out_gradient, float *out_hv);

/** The exact Hessians d^2 f_t / dx dx of output target_i at each example: out receives n * input_size^2
 *  floats (row-major per example). internal_batch_size bounds the examples propagated at once (<= 0: a
 *  size for a 64 MB working set). */
SA_API int sa_hessian(const sa_model *model, const float *x, int64_t n, const int64_t *target, int64_t n_target,
                      int64_t internal_batch_size, float *out);

/* ---------------------------------------------------------------------------------------------------
 * Attribution in a transformed domain (TRIM: Singh, Ha, Yu et al. 2020)
 *
 * For a linear transform s = T x of the input (Fourier bands, wavelets, PCA) with inverse T^-1 (p x k:
 * p = input size, k coefficients), sa_model_transformed builds the network g(s) = f(T^-1 s) or, with
 * use_residual, g([s, r]) = f(T^-1 s + r) where r = x - T^-1 T x is what the coefficients do not
 * reconstruct. Any method run on g attributes to the coefficients s (the first k inputs): give r the same
 * value in an example and in its baseline, so that path methods and DeepLIFT attribute nothing to it,
 * and a CD mask of 0 over r (the residual is irrelevant). The Python package builds T for Fourier bands.
 * ------------------------------------------------------------------------------------------------- */

/** A new model g (input [k], or [k + p] with use_residual = 1): a Linear node with weight T^-1 (or
 *  [T^-1 | I]) and no bias, a Reshape to model's input shape when that is not flat, then model's nodes.
 *  inverse: T^-1 row-major, input_size x coefficients. Free the result with sa_model_free. */
SA_API int sa_model_transformed(const sa_model *model, const float *inverse, int64_t coefficients,
                                int use_residual, sa_model **out_model);

/* ---------------------------------------------------------------------------------------------------
 * Perturbation attributions (forward passes only; Captum's definitions)
 *
 * x holds n examples; out receives n * input_size floats. baselines: n_baselines = 0 (zeros; pointer may
 * be NULL), 1 (broadcast) or n. target: n_target = 1 or n class indices. Every perturbed input is built in
 * place and evaluated in chunks of at most internal_batch_size rows (<= 0: a size for a ~4 MB working set
 * per thread), chunks in parallel on the library's threads. x and the baselines are copied whole (feature
 * permutation mixes examples); the per-example state is a few doubles per perturbed input, plus the
 * coalitions (n * n_samples * M bytes, at most 2^31, and n_samples * M <= 2^27 per example, else
 * SA_ERR_OUT_OF_MEMORY) for sa_kernel_shap and sa_lime.
 *
 * Feature masks: `feature_mask` groups the input elements into features (superpixels, positions):
 * mask_rows (1: shared by the batch, or n: one row per example) x input_size ids, which must be
 * contiguous 0..M-1 with every id used somewhere (M is the number of features); NULL makes every element
 * its own feature (M = input_size) and mask_rows is then ignored. A feature's attribution is written to
 * each of its elements.
 *
 * Seeded draws (permutations, coalitions): sample s of row i is keyed by (seed, first_example + i, s)
 * through the counter-based generator of sa_expected_gradients, never by internal_batch_size or threads.
 * --------------------------------------------------------------------------------------------------- */

/** Occlusion (Zeiler & Fergus 2014; Captum's Occlusion): a window of ndim sizes `sliding_window_shapes`
 *  (ndim = the input's dimensions, channels included) slides with steps `strides` (NULL: 1 each);
 *  positions per dimension are ceil((dim - window) / stride) + 1, the last one cut at the edge. Each
 *  position sets the window to the baseline; an element's attribution is the mean over the windows
 *  covering it of f_t(x) - f_t(x occluded). A window larger than its dimension, or a stride larger than
 *  its window (unless the window spans the dimension), is SA_ERR_INVALID_ARGUMENT. */
SA_API int sa_occlusion(const sa_model *model, const float *x, int64_t n, const float *baselines, int64_t n_baselines,
                        const int64_t *target, int64_t n_target, const int64_t *sliding_window_shapes,
                        const int64_t *strides, int64_t ndim, int64_t internal_batch_size, float *out);

/** Feature ablation (Captum's FeatureAblation): each feature in turn is set to the baseline; its
 *  elements get f_t(x) - f_t(x with the feature ablated). */
SA_API int sa_feature_ablation(const sa_model *model, const float *x, int64_t n, const float *baselines,
                               int64_t n_baselines, const int64_t *target, int64_t n_target,
                               const int64_t *feature_mask, int64_t mask_rows, int64_t internal_batch_size,
                               float *out);

/** Feature permutation (Captum's FeaturePermutation): for each feature f, its values are permuted across
 *  the batch by pi_f (never the identity; n >= 2), and example i's elements of f get
 *  f_t(x_i) - f_t(x_i with feature f from x_{pi_f(i)}). `permutations` (NULL: drawn from `seed`, keyed by
 *  (seed, 0, f)) holds M rows of n entries, row f a permutation of 0..n-1 (as Captum's torch.randperm). */
SA_API int sa_feature_permutation(const sa_model *model, const float *x, int64_t n, const int64_t *target,
                                  int64_t n_target, const int64_t *feature_mask, int64_t mask_rows, uint64_t seed,
                                  const int64_t *permutations, int64_t internal_batch_size, float *out);

/** Shapley value sampling (Castro et al. 2009; Captum's ShapleyValueSampling): for each of n_samples
 *  permutations of the M features, the features switch from the baseline to x one by one in that order
 *  and each gets the change of f_t it caused; phi is the mean over the permutations, and sums to
 *  f_t(x) - f_t(baseline) exactly (every permutation telescopes). `permutations` (NULL: drawn, keyed by
 *  (seed, first_example + i, s), one set per example) holds n_samples rows of M entries shared by the
 *  batch, as Captum draws them. */
SA_API int sa_shapley_value_sampling(const sa_model *model, const float *x, int64_t n, const float *baselines,
                                     int64_t n_baselines, const int64_t *target, int64_t n_target,
                                     const int64_t *feature_mask, int64_t mask_rows, int64_t n_samples, uint64_t seed,
                                     int64_t first_example, const int64_t *permutations,
                                     int64_t internal_batch_size, float *out);

/** KernelSHAP (Lundberg & Lee 2017): the weighted least-squares fit of f_t(b + z(x - b)) - f_t(b) ~ z . phi
 *  over coalitions z (M bits) with the Shapley kernel weight (M-1) / (C(M,|z|) |z| (M-|z|)), under the
 *  constraint sum(phi) = f_t(x) - f_t(b), solved exactly (one variable eliminated, SVD least squares, as
 *  shap's KernelExplainer). When n_samples >= 2^M - 2 every coalition is enumerated with its weight and
 *  phi are the exact Shapley values; otherwise n_samples coalitions per example are drawn with the kernel
 *  as their distribution (Captum's and shap's sampling), weight 1 each. `coalitions` (NULL: drawn)
 *  passes coalition_rows (1: shared, or n) x n_samples x M bytes, 0 or 1, with coalition_weights
 *  (coalition_rows x n_samples doubles, finite and >= 0; NULL: 1 each; shap's KernelExplainer's
 *  kernelWeights reproduce its fit); empty and full coalitions among them are skipped (the constraint
 *  fixes them). */
SA_API int sa_kernel_shap(const sa_model *model, const float *x, int64_t n, const float *baselines,
                          int64_t n_baselines, const int64_t *target, int64_t n_target, const int64_t *feature_mask,
                          int64_t mask_rows, int64_t n_samples, uint64_t seed, int64_t first_example,
                          const uint8_t *coalitions, int64_t coalition_rows, const double *coalition_weights,
                          int64_t internal_batch_size, float *out);

/** LIME's distance in input space (Captum's get_exp_kernel_similarity_function). */
typedef enum sa_lime_distance {
    SA_LIME_COSINE = 0,    /**< 1 - cos(x, x~) (Captum's default) */
    SA_LIME_EUCLIDEAN = 1  /**< ||x - x~||_2 */
} sa_lime_distance;

/** LIME's interpretable surrogate, fitted with an intercept on the weighted samples. */
typedef enum sa_lime_surrogate {
    SA_LIME_LASSO = 0,  /**< scikit-learn's Lasso objective (1/(2 sum w)) sum w r^2 + alpha ||beta||_1 (Captum's default, alpha 0.01) */
    SA_LIME_LINEAR = 1  /**< weighted least squares, minimum-norm (scikit-learn's LinearRegression) */
} sa_lime_surrogate;

/** LIME (Ribeiro et al. 2016; Captum's Lime): n_samples coalitions per example (each feature kept with
 *  probability 1/2; or `coalitions` as for sa_kernel_shap), the model at b + z(x - b), each sample weighted
 *  by exp(-D^2 / (2 kernel_width^2)) with D of `distance` (an sa_lime_distance) between x and the perturbed
 *  input, and a linear `surrogate` (an sa_lime_surrogate; alpha >= 0 for the Lasso) fitted to them; its
 *  coefficients are the attributions. kernel_width must be positive and finite. */
SA_API int sa_lime(const sa_model *model, const float *x, int64_t n, const float *baselines, int64_t n_baselines,
                   const int64_t *target, int64_t n_target, const int64_t *feature_mask, int64_t mask_rows,
                   int64_t n_samples, uint64_t seed, int64_t first_example, const uint8_t *coalitions,
                   int64_t coalition_rows, double kernel_width, int distance, int surrogate, double alpha,
                   int64_t internal_batch_size, float *out);

/* ---------------------------------------------------------------------------------------------------
 * Training
 *
 * Parameters: every Linear and convolution has a weight then a bias, every BatchNorm a weight (gamma) then
 * a bias (beta), in node order: PyTorch's `list(module.parameters())` order and shapes. A layer built
 * without a bias has a zero bias, which training learns. BatchNorm trains in inference semantics: the
 * running mean and variance stay fixed and normalise every example (PyTorch's module.eval()); no batch
 * statistics are used. Parameter arrays are exchanged concatenated in that order (total floats from
 * sa_model_parameter_count).
 *
 * Losses (sa_loss), each the mean over the mini-batch as PyTorch's reduction="mean":
 *   SA_LOSS_MSE                   mean over n·K outputs of (f − y)²; labels: y_value, n·K floats;
 *   SA_LOSS_CROSS_ENTROPY         mean over n of logsumexp(f) − f_y on the logits (stable); labels:
 *                                 y_class, n int64 class indices in 0..K−1;
 *   SA_LOSS_BINARY_CROSS_ENTROPY  on logits, mean over n·K of max(f,0) − f·y + log(1 + e^−|f|); labels:
 *                                 y_value, n·K floats in [0, 1] (K = 1: one logit per example).
 * Pass exactly the label pointer the loss takes and NULL for the other. A model that ends in Softmax is
 * trained with cross-entropy on the logits before the Softmax (the same loss, computed stably); one that
 * ends in Sigmoid with binary cross-entropy on the logit before it; the trained model keeps its final
 * layer. Binary cross-entropy after a Softmax is SA_ERR_INVALID_ARGUMENT.
 *
 * Optimisers (sa_optimizer) follow torch.optim: SGD v = μv + g, p −= lr·v; Adam with bias correction and
 * eps added after the corrected square root; weight decay (both) as λp added to the gradient (L2, not
 * AdamW), on every parameter.
 *
 * A run: options->initialize = 1 first draws PyTorch's default initialisation (weights and biases
 * U(−1/√fan_in, 1/√fan_in), BatchNorm gamma 1 and beta 0; seeded Philox draws, not torch's numbers). Each
 * epoch shuffles the examples by a permutation of (seed, epoch) alone (options->shuffle = 0: in order),
 * cuts them into mini-batches of batch_size (the last may be smaller) and takes one optimiser step per
 * mini-batch. Epochs and steps count from 1. With a validation set, after every epoch its loss and
 * accuracy are computed; patience > 0 stops after `patience` epochs without improvement of the metric
 * (sa_metric: the loss, lower is better, or the accuracy, higher is better; accuracy needs a
 * classification loss) and returns the best epoch's weights. A non-finite loss, gradient or weight stops
 * the run with SA_ERR_NUMERICAL and a message naming the epoch and step; no model is returned then.
 * Repeatable: for a fixed thread count (sa_set_num_threads) the same inputs and seed give the same weights
 * bit for bit.
 * ------------------------------------------------------------------------------------------------- */

/** Training losses (sa_train_options.loss, sa_loss_and_gradients). */
typedef enum sa_loss {
    SA_LOSS_MSE = 0,
    SA_LOSS_CROSS_ENTROPY = 1,
    SA_LOSS_BINARY_CROSS_ENTROPY = 2
} sa_loss;

/** Optimisers (sa_train_options.optimizer). */
typedef enum sa_optimizer {
    SA_OPTIMIZER_SGD = 0,
    SA_OPTIMIZER_ADAM = 1
} sa_optimizer;

/** What early stopping and the best epoch follow (sa_train_options.metric). */
typedef enum sa_metric {
    SA_METRIC_LOSS = 0,
    SA_METRIC_ACCURACY = 1
} sa_metric;

/** Columns of one epoch's row in sa_train's history: train loss (mean over the epoch's examples of their
 *  mini-batch's loss, before that mini-batch's step), validation loss, validation accuracy (NaN when there
 *  is no validation set, or for the accuracy of SA_LOSS_MSE). */
#define SA_TRAIN_HISTORY_COLUMNS 3

/** An attribution prior (a penalty added to the training loss; see section Attribution priors). */
typedef struct sa_prior sa_prior;

/** Options of sa_train; start from sa_train_default_options(). struct_size must equal the library's
 *  sizeof(sa_train_options) (set by the defaults); the layout is fixed for one SA_VERSION. */
typedef struct sa_train_options {
    size_t struct_size;        /**< sizeof(sa_train_options), set by sa_train_default_options() */
    int loss;                  /**< an sa_loss (default SA_LOSS_CROSS_ENTROPY) */
    int optimizer;             /**< an sa_optimizer (default SA_OPTIMIZER_ADAM) */
    int metric;                /**< an sa_metric (default SA_METRIC_LOSS) */
    int shuffle;               /**< 1 (default): seeded shuffling every epoch; 0: the given order */
    int initialize;            /**< 0 (default): start from the model's weights; 1: PyTorch's default init */
    double learning_rate;      /**< > 0 (default 1e-3) */
    double momentum;           /**< SGD momentum >= 0 (default 0) */
    double beta1;              /**< Adam, in [0, 1) (default 0.9) */
    double beta2;              /**< Adam, in [0, 1) (default 0.999) */
    double eps;                /**< Adam, >= 0 (default 1e-8) */
    double weight_decay;       /**< L2 coefficient >= 0 (default 0) */
    int64_t epochs;            /**< > 0 (default 10) */
    int64_t batch_size;        /**< > 0 (default 32) */
    uint64_t seed;             /**< shuffling and initialisation (default 0) */
    int64_t patience;          /**< 0 (default): no early stopping; > 0 needs a validation set */
    const sa_prior *const *priors; /**< n_priors attribution priors added to the loss (default NULL) */
    int64_t n_priors;          /**< number of priors (default 0); the caller keeps them alive during sa_train */
} sa_train_options;

/** Called after every epoch (epoch from 1; val_loss and val_accuracy NaN when not available); return
 *  nonzero to stop training there (the run then ends as if it were the last epoch). */
typedef int (*sa_train_callback)(void *user_data, int64_t epoch, double train_loss, double val_loss,
                                 double val_accuracy);

/** The default training options (see sa_train_options). */
SA_API sa_train_options sa_train_default_options(void);

/** Number of parameter arrays of the model (*count) and their total number of floats (*total). */
SA_API int sa_model_parameter_count(const sa_model *model, int64_t *count, int64_t *total);

/** Shape of parameter array `index` (0..count−1): *ndim (1 to 4) dimensions written to shape[0..3]. */
SA_API int sa_model_parameter_shape(const sa_model *model, int64_t index, int64_t *shape, int64_t *ndim);

/** Every parameter, concatenated in order, into out (capacity floats, at least the total). */
SA_API int sa_model_parameters(const sa_model *model, float *out, int64_t capacity);

/** A new model: `model` with the parameters `values` (count floats, exactly the total, in order; finite). */
SA_API int sa_model_with_parameters(const sa_model *model, const float *values, int64_t count, sa_model **out_model);

/** A new model: `model` with PyTorch's default initialisation drawn from `seed` (see the section text). */
SA_API int sa_model_initialized(const sa_model *model, uint64_t seed, sa_model **out_model);

/** The mean `loss` (an sa_loss) of the n examples x with labels y_class or y_value (see the section text)
 *  plus the n_priors attribution priors `priors` (NULL with n_priors = 0: none) into *out_loss, and the
 *  gradient of that sum with respect to every parameter into out_grads (grads_capacity floats, at least
 *  the total), concatenated in parameter order. The priors draw as at the first step of a run seeded
 *  `seed` (global step 0; see sa_prior_draws). Computed in chunks of rows on the library's threads
 *  (repeatable bit for bit for a fixed thread count). */
SA_API int sa_loss_and_gradients(const sa_model *model, const float *x, int64_t n, const int64_t *y_class,
                                 const float *y_value, int loss, const sa_prior *const *priors, int64_t n_priors,
                                 uint64_t seed, double *out_loss, float *out_grads, int64_t grads_capacity);

/** Trains a copy of `model` on the n examples x with labels y_class / y_value and returns it in *out_model
 *  (free it with sa_model_free; `model` is unchanged). Validation: val_n = 0 for none (val_x and its labels
 *  may then be NULL), else val_n examples val_x with labels val_y_class / val_y_value of the same kind.
 *  options: NULL for the defaults. callback: NULL or called after every epoch with user_data. out_history:
 *  NULL, or history_capacity doubles, at least options->epochs · SA_TRAIN_HISTORY_COLUMNS (checked before
 *  training), receiving one row per epoch run; *out_epochs (may be NULL) the number of epochs run. */
SA_API int sa_train(const sa_model *model, const float *x, int64_t n, const int64_t *y_class, const float *y_value,
                    const float *val_x, int64_t val_n, const int64_t *val_y_class, const float *val_y_value,
                    const sa_train_options *options, sa_train_callback callback, void *user_data,
                    sa_model **out_model, double *out_history, int64_t history_capacity, int64_t *out_epochs);

/* --- layer attributions --- */
/* ---------------------------------------------------------------------------------------------------
 * Layer and neuron attributions, and NoiseTunnel
 *
 * `layer` is a node index (0..num_layers-1); the attributions belong to that node's output (Captum's layer
 * methods with attribute_to_layer_input=False), n * size floats where size is the node's output size
 * (sa_model_size_at(model, layer + 1)). The nodes after the layer see its value replaced, every other
 * value they read (a skip connection around the layer) at the actual input: gradients at the layer are
 * partial derivatives with those values held fixed, as a hook on the layer sees them. The network is used
 * as built. Baselines are inputs (n_baselines 0: zeros; 1: shared; n), run forward to the layer; targets
 * as sa_saliency. delta (may be NULL): n floats, sum(attributions) - (f_t(x) - f_t(x0)), which is zero
 * up to quadrature (IG, conductance) or rounding (DeepLIFT) when no skip connection passes the layer.
 * internal_batch_size <= 0 chooses (memory bound).
 *
 * NoiseTunnel over any method: sa_noise_tunnel_inputs makes the noisy copies (row i*nt_samples + s of
 * out is x_i + stdev * eps, eps the standard normals of (seed, first_example + i, s), the draws
 * sa_smoothgrad makes), any attribution runs on them, and sa_noise_tunnel_aggregate reduces the copies'
 * attributions per example.
 * ------------------------------------------------------------------------------------------------- */

/** How sa_grad_cam resizes its map to the input's spatial size (Captum's LayerAttribution.interpolate,
 *  torch's F.interpolate with a target size). */
typedef enum sa_upsample {
    SA_UPSAMPLE_NONE = 0,     /**< the map at the layer's resolution */
    SA_UPSAMPLE_NEAREST = 1,  /**< source index floor(dst * in / out) (Captum's default) */
    SA_UPSAMPLE_BILINEAR = 2  /**< linear per spatial axis, align_corners=False (1-D: torch's "linear") */
} sa_upsample;

/** Saliency at node `layer`'s output: d f_t / d a (its absolute value when absolute != 0). out: n * size. */
SA_API int sa_layer_saliency(const sa_model *model, const float *x, int64_t n, const int64_t *target,
                             int64_t n_target, int64_t layer, int absolute, int64_t internal_batch_size, float *out);

/** Captum's LayerGradientXActivation: a * d f_t / d a at node `layer`'s output a. out: n * size. */
SA_API int sa_layer_gradient_x_activation(const sa_model *model, const float *x, int64_t n, const int64_t *target,
                                          int64_t n_target, int64_t layer, int64_t internal_batch_size, float *out);

/** Captum's LayerIntegratedGradients: the path runs between the layer's activations a(x0) and a(x),
 *  (a(x) - a(x0)) * sum_k w_k d f_t / d a at a(x0) + alpha_k (a(x) - a(x0)), with the rule `method` (an
 *  sa_ig_method) of n_steps nodes. internal_batch_size: path points per chunk. out: n * size. */
SA_API int sa_layer_integrated_gradients(const sa_model *model, const float *x, int64_t n, const float *baselines,
                                         int64_t n_baselines, const int64_t *target, int64_t n_target, int64_t layer,
                                         int64_t n_steps, int method, int64_t internal_batch_size, float *out,
                                         float *delta);

/** Captum's LayerConductance: at the n_steps + 1 nodes alpha_0 < ... < alpha_n of `method` on the input
 *  path x0 + alpha (x - x0), sum_{k<n} d f_t / d a(alpha_k) * (a(alpha_{k+1}) - a(alpha_k)).
 *  internal_batch_size: path points per chunk (whole examples). out: n * size. */
SA_API int sa_layer_conductance(const sa_model *model, const float *x, int64_t n, const float *baselines,
                                int64_t n_baselines, const int64_t *target, int64_t n_target, int64_t layer,
                                int64_t n_steps, int method, int64_t internal_batch_size, float *out, float *delta);

/** Captum's LayerDeepLift: multipliers at node `layer`'s output from the DeepLIFT rules (rule, maxpool as
 *  sa_deeplift) of the nodes after it, times a(x) - a(x0) (multiply_by_inputs != 0) or alone. A final
 *  Softmax itself cannot be the layer. out: n * size. */
SA_API int sa_layer_deeplift(const sa_model *model, const float *x, int64_t n, const float *baselines,
                             int64_t n_baselines, const int64_t *target, int64_t n_target, int64_t layer, int rule,
                             int maxpool, int multiply_by_inputs, int64_t internal_batch_size, float *out, float *delta);

/** Per-example shape of sa_grad_cam's result for `layer` and `upsample` (an sa_upsample): *ndim dimensions
 *  into shape[0..2]: (1, spatial...) of the layer's output ((1) for a layer without spatial axes), or of
 *  the input when upsampled (the layer and the input must then have as many spatial axes). */
SA_API int sa_grad_cam_shape(const sa_model *model, int64_t layer, int upsample, int64_t *shape, int64_t *ndim);

/** Captum's LayerGradCam: sum_c w_c a_c over the channels of node `layer`'s output a, w_c the mean over
 *  the spatial axes of d f_t / d a_c; ReLU'd when relu_attributions != 0; resized by `upsample`.
 *  out: n * the size of sa_grad_cam_shape. */
SA_API int sa_grad_cam(const sa_model *model, const float *x, int64_t n, const int64_t *target, int64_t n_target,
                       int64_t layer, int relu_attributions, int upsample, int64_t internal_batch_size, float *out);

/** Captum's NeuronIntegratedGradients: Integrated Gradients (n_steps, method as sa_integrated_gradients) of
 *  element `neuron` (a flat index into one example's output of node `layer`) with respect to the input.
 *  out: n * input_size; delta (may be NULL): sum(attributions) minus the neuron's difference. */
SA_API int sa_neuron_integrated_gradients(const sa_model *model, const float *x, int64_t n, const float *baselines,
                                          int64_t n_baselines, int64_t layer, int64_t neuron, int64_t n_steps,
                                          int method, int64_t internal_batch_size, float *out, float *delta);

/** NoiseTunnel's noisy copies: out (n * nt_samples * width floats), row i * nt_samples + s = x_i + stdev *
 *  eps with eps the standard normals keyed by (seed, first_example + i, s) (stdev finite, >= 0). */
SA_API int sa_noise_tunnel_inputs(const float *x, int64_t n, int64_t width, int64_t nt_samples, float stdev,
                                  uint64_t seed, int64_t first_example, float *out);

/** Captum's draw_baseline_from_distrib: for each of the n * nt_samples copies (same order), a uniform index
 *  in 0..n_baselines-1 keyed by (seed, first_example + i, s), into out (n * nt_samples int64). */
SA_API int sa_noise_tunnel_baseline_draws(int64_t n, int64_t nt_samples, int64_t n_baselines, uint64_t seed,
                                          int64_t first_example, int64_t *out);

/** The per-example aggregate (nt_type, an sa_nt_type: mean, mean of squares, or E[a^2] - E[a]^2 as
 *  Captum) of the copies' attributions (n * nt_samples rows of width floats, example-major), summed in
 *  double, into out (n * width). */
SA_API int sa_noise_tunnel_aggregate(const float *attributions, int64_t n, int64_t nt_samples, int64_t width,
                                     int nt_type, float *out);
/* --- propagation rules --- */
/* ---------------------------------------------------------------------------------------------------
 * Propagation rules: layer-wise relevance propagation (LRP; Bach et al. 2015, Montavon et al.), guided
 * backpropagation and deconvolution, as Captum's LRP, GuidedBackprop and Deconvolution define them.
 *
 * LRP: relevance starts at the target output, R = f_t(x) e_t (a network ending in Softmax: at the target
 * logit; Captum refuses a Softmax), and each node redistributes the relevance at its output over the values
 * it reads. With s = R / stab(z), stab(z) = z + e sign(z) (sign 0 taken as +1):
 *   epsilon (Linear, Conv): R_i = a_i (W^T s)_i, z = W a + b, e = epsilon (Captum's default 1e-9);
 *   gamma (Linear, Conv): the same with W + gamma W+ and the bias unchanged (Captum's GammaRule), e = 1e-9;
 *   alpha_beta (Linear, Conv; alpha - beta = 1, beta >= 0): R_i = a_i [alpha (W+^T s+)_i - beta (W-^T s-)_i],
 *     z+ = W+ a + b, z- = W- a, e = 1e-9 (alpha = 1, beta = 0: Captum's Alpha1_Beta0_Rule);
 *   zb (a Linear or Conv reading the network input, through Flatten/Reshape/Dropout only; bounds low <= x
 *     <= high): z = W x - W+ low - W- high (no bias), R_i = x_i (W^T s)_i - low_i (W+^T s)_i - high_i (W-^T s)_i;
 *   identity: relevance unchanged (BatchNorm; Captum's IdentityRule).
 * BatchNorm, max- and average pooling, GlobalAvgPool and Add take the epsilon rule on their own map
 * (Captum's defaults): R_in = a * J^T (R / stab(y)); BatchNorm may take identity. Every activation,
 * Dropout, Flatten and Reshape pass relevance through unchanged (Captum: ReLU, Tanh, Dropout; it refuses the
 * others); Concat gives each input its slice. An LSTM is refused (SA_ERR_INVALID_ARGUMENT). Token networks
 * are attributed at the embedding output, summed over the embedding axis.
 * Presets (sa_lrp_options.rule) choose the rule of every Linear and Conv: SA_LRP_EPSILON, SA_LRP_GAMMA,
 * SA_LRP_ALPHA_BETA, or SA_LRP_COMPOSITE (zb for the input layer, gamma for the other convolutions, epsilon
 * for the other Linear layers). node_rules overrides them per node. With zero biases and e -> 0 every rule
 * conserves relevance: sum R = f_t(x). delta = f_t(x) - sum R per example (Captum's convergence delta).
 * Where a stabilised denominator is exactly 0 (epsilon = 0 at a neuron with z = 0) nothing passes (not 0/0).
 *
 * Guided backpropagation: the gradient of f_t with every ReLU's backward replaced by max(g * 1[x > 0], 0);
 * deconvolution: by max(g, 0). Every other node kind takes its ordinary gradient (Captum hooks only ReLU).
 * ------------------------------------------------------------------------------------------------- */

/** LRP rules (sa_lrp_options.rule takes a preset: EPSILON, GAMMA, ALPHA_BETA or COMPOSITE;
 *  sa_lrp_options.node_rules entries take EPSILON, GAMMA, ALPHA_BETA, ZB, IDENTITY or DEFAULT). */
typedef enum sa_lrp_rule {
    SA_LRP_DEFAULT = -1,
    SA_LRP_EPSILON = 0,
    SA_LRP_GAMMA = 1,
    SA_LRP_ALPHA_BETA = 2,
    SA_LRP_ZB = 3,
    SA_LRP_IDENTITY = 4,
    SA_LRP_COMPOSITE = 5
} sa_lrp_rule;

/** Options of sa_lrp; start from sa_lrp_default_options(). struct_size must equal the library's
 *  sizeof(sa_lrp_options) (set by the defaults); the layout is fixed for one SA_VERSION. */
typedef struct sa_lrp_options {
    size_t struct_size;          /**< sizeof(sa_lrp_options), set by sa_lrp_default_options() */
    int rule;                    /**< a preset (default SA_LRP_EPSILON) */
    int64_t n_nodes;             /**< 0 (default), or the model's node count when any node_* array is given */
    const int *node_rules;       /**< NULL (default), or n_nodes entries: an sa_lrp_rule per node,
                                      SA_LRP_DEFAULT for the preset's */
    double epsilon;              /**< >= 0 (default 1e-9), for every node taking the epsilon rule */
    double gamma;                /**< >= 0 (default 0.25), for every node taking the gamma rule */
    const double *node_epsilon;  /**< NULL (default), or n_nodes entries: node k's own epsilon, NaN for
                                      `epsilon` (as Captum's EpsilonRule(e) per module; ignored by nodes
                                      that do not take the epsilon rule) */
    const double *node_gamma;    /**< NULL (default), or n_nodes entries: node k's own gamma, NaN for
                                      `gamma` */
    double alpha;                /**< default 1; alpha - beta = 1 */
    double beta;                 /**< >= 0 (default 0) */
    const float *low;            /**< zb bounds: NULL (default; then high is NULL too), 1 value for every
                                      input element or input_size values */
    int64_t n_low;
    const float *high;           /**< as low, with low <= high elementwise */
    int64_t n_high;
    int64_t internal_batch_size; /**< examples per chunk, <= 0 (default): chosen for a memory budget */
} sa_lrp_options;

/** The default LRP options (see sa_lrp_options). */
SA_API sa_lrp_options sa_lrp_default_options(void);

/** LRP relevances of output target (n_target = 1 for all or n, one per example) for n examples x into
 *  out (n * input_size floats); delta: NULL, or n floats receiving f_t(x) - sum R. options: NULL for the
 *  defaults. */
SA_API int sa_lrp(const sa_model *model, const float *x, int64_t n, const int64_t *target, int64_t n_target,
                  const sa_lrp_options *options, float *out, float *delta);

/** Guided backpropagation of output target for n examples x into out (n * input_size floats);
 *  internal_batch_size <= 0: chosen for a memory budget. */
SA_API int sa_guided_backprop(const sa_model *model, const float *x, int64_t n, const int64_t *target,
                              int64_t n_target, int64_t internal_batch_size, float *out);

/** Deconvolution (as sa_guided_backprop, with the ReLU rule max(g, 0)). */
SA_API int sa_deconvolution(const sa_model *model, const float *x, int64_t n, const int64_t *target,
                            int64_t n_target, int64_t internal_batch_size, float *out);

/* --- progress --- */
/* ---------------------------------------------------------------------------------------------------
 * Progress and cancellation
 *
 * A long call reports its progress to the calling thread's progress handler between pieces of work, and
 * stops when the handler returns non-zero. Why a per-thread handler (as sqlite3_progress_handler) rather
 * than a callback argument: no existing signature changes, every long call honours it without a new
 * parameter, and a binding installs it once around any call (the Python package does, for its progress
 * bar and Ctrl-C). Calls on other threads are not affected.
 *
 * The handler is called on the thread that made the call (never on a library worker thread), after each
 * piece of work, with `done` of `total` units finished: examples for the row-chunked calls (forward,
 * gradients, saliency, input×gradient, IG, EG, SmoothGrad, DeepLIFT, DeepSHAP, Integrated and Expected
 * Hessians, Contextual Decomposition), perturbed inputs evaluated for the perturbation methods (occlusion,
 * feature ablation and permutation, Shapley value sampling, KernelSHAP, LIME), epochs for sa_train,
 * scoring rounds for ACD (total 0: not known in advance). `done` increases from report to report, and the
 * last report of a successful call has done == total (except ACD's, and sa_train's when it stops early).
 * A piece holds about 2^27 multiply-adds (tens of milliseconds; a row chunk also at most 4 MiB per row
 * buffer), so a long call reports often and a small one once, at its end; the pieces do not depend on
 * whether a handler is installed, so results never do. The RATE functions (a few factorisations) do not
 * call the handler.
 *
 * Cancelling: when the handler returns non-zero the call stops before its next piece and returns
 * SA_ERR_CANCELLED, its message naming the call ("sa_integrated_gradients: cancelled by the progress
 * handler after 512 of 4096"). Output buffers then hold partial results. The model is unchanged and stays
 * usable; sa_train returns no model. The handler must not free the model the call is using; it may call
 * sa_set_progress_handler. */

/** The progress handler: `done` of `total` units of the running call are finished (total 0: unknown).
 *  Return 0 to continue, non-zero to cancel the call (SA_ERR_CANCELLED). */
typedef int (*sa_progress_fn)(void *user_data, int64_t done, int64_t total);

/** Installs `callback` (called with `user_data`) as the calling thread's progress handler for the calls
 *  it makes afterwards, replacing any previous one; NULL removes it. Always returns SA_OK. */
SA_API int sa_set_progress_handler(sa_progress_fn callback, void *user_data);

/* --- seeded draws --- */
/* ---------------------------------------------------------------------------------------------------
 * Seeded draws: the counter-based generator of the stochastic methods (Philox4x32-10), for callers that
 * draw their own noise (the Python metrics perturb inputs with it) so that a batch drawn in pieces equals
 * the one-call draws.
 *
 * out receives n * count floats, row-major; row i is a pure function of (seed, first_example + i, stream):
 * element j is word j mod 2 of block j / 2 of the counter (example first_example + i, sample `stream`),
 * so rows [a, b) drawn with first_example = a equal rows a..b-1 of one call, bit for bit, whatever the
 * thread count, and the first k elements of a row do not depend on count. Distinct streams give
 * independent draws. The stochastic methods key their own draws by a sample index (below 2^20) or a
 * feature index (below 2^30) in the same word, so a stream of 2^30 or more never repeats their numbers.
 * n >= 1, 1 <= count <= 2^33, first_example >= 0 and first_example + n representable.
 * ------------------------------------------------------------------------------------------------- */

/** n * count standard normal draws (Box-Muller on the block's two 53-bit uniforms) into out. */
SA_API int sa_random_normal(uint64_t seed, int64_t first_example, int64_t n, int64_t count, uint32_t stream,
                            float *out);

/** n * count uniform draws on [lo, hi) into out (lo < hi, both finite; lo + (hi - lo) u rounded to float32
 *  and kept below hi). */
SA_API int sa_random_uniform(uint64_t seed, int64_t first_example, int64_t n, int64_t count, uint32_t stream,
                             float lo, float hi, float *out);

/* ---------------------------------------------------------------------------------------------------
 * Attribution priors
 *
 * A prior is a penalty on the model's attributions added to the task loss in sa_train (options->priors)
 * and sa_loss_and_gradients; its gradient with respect to the weights is computed by double
 * back-propagation (every node kind, LSTM included). A token model (Embedding first) is attributed at
 * the embedding output summed over the embedding axis, one phi per token (d = L; references are token ids).
 * With a mini-batch of N examples, d input elements, phi the attributions and pbar_j = mean_n |phi_nj|:
 *   sa_prior_l1               lam · mean_nj |phi_nj|
 *   sa_prior_gini             −lam · Gini(pbar), Gini(v) = ½ mean_jk |v_j − v_k| / mean(v) (0 when v = 0)
 *   sa_prior_graph            lam · pbarᵀ (D − A) pbar, A the d×d adjacency, D = diag(row sums of A)
 *   sa_prior_total_variation  lam · mean_n Σ_c Σ |differences of phi between vertical and horizontal
 *                             neighbours| (models with image inputs [C, H, W] only)
 *   sa_prior_input_gradient   lam · mean_n Σ_j (mask_j ∂/∂x_nj Σ_c log softmax(f(x_n))_c)², f the logits
 *                             (the input of a final Softmax); Ross et al.; phi is that gradient, no sampling.
 * For the first four phi is Expected Gradients of the network output at the label (class labels; for
 * float labels the sum of the outputs): phi_n = mean_j (x_n − r_nj) ⊙ ∇f(r_nj + α_nj (x_n − r_nj)) with
 * k references per example (default 1) drawn at every step: draw j of example n (its row in the
 * mini-batch) is Philox block (seed, global step, "EGPR", n·k + j) (see sa_prior_draws), whose first
 * uniform picks the reference — a row of the reference set given to sa_prior_set_sampling, or by default
 * one of the other examples of the same mini-batch, row (n + 1 + floor(u·(N − 1))) mod N — and whose second
 * is α. The derivative of |·| at 0 is taken as 0. lam must be finite and >= 0; arrays must be finite;
 * shapes are checked against the model when the prior is used. A prior may be shared by several calls
 * and threads; sa_prior_set_sampling is refused (SA_ERR_FROZEN) once it has been used.
 * ------------------------------------------------------------------------------------------------- */

/** L1 sparsity of the attributions, weight lam, into *out_prior (free with sa_prior_free). */
SA_API int sa_prior_l1(double lam, sa_prior **out_prior);

/** Gini sparsity (−lam · Gini of the mean absolute attributions) into *out_prior. */
SA_API int sa_prior_gini(double lam, sa_prior **out_prior);

/** Graph smoothness over the input elements: adjacency is d×d row-major (d = the model's input size,
 *  checked when used), weight lam, into *out_prior. */
SA_API int sa_prior_graph(const float *adjacency, int64_t d, double lam, sa_prior **out_prior);

/** Total variation of the attribution image (models with [C, H, W] inputs), weight lam, into *out_prior. */
SA_API int sa_prior_total_variation(double lam, sa_prior **out_prior);

/** Ross et al.'s input-gradient penalty with d mask values (d = the model's input size, checked when
 *  used), weight lam, into *out_prior. */
SA_API int sa_prior_input_gradient(const float *mask, int64_t d, double lam, sa_prior **out_prior);

/* --- CDEP (Rieger et al. 2020) --- */
/** CDEP: lam · Σ_k mean_nc softmax([β_nkc, γ_nkc])₀ = lam · Σ_k mean_nc σ(β_nkc − γ_nkc), (β, γ) the
 *  Contextual Decomposition parts (sa_contextual_decomposition's rules, at the logits) of region k at class c
 *  of example n; its weight gradient is taken through the CD propagation (every node kind, LSTM included).
 *  masks: n_masks × d values in [0, 1] (1 marks the penalised region; d = the model's input size, one value
 *  per position for a token network, checked when used; values outside [0, 1]: SA_ERR_OUT_OF_RANGE). The
 *  regions add, each averaged over examples and classes (the authors' ColorMNIST code); for the four corners
 *  of DecoyMNIST their code penalises one region, the union. No sampling (sa_prior_set_sampling does not
 *  apply). Into *out_prior (free with sa_prior_free). */
SA_API int sa_prior_cdep(const float *masks, int64_t n_masks, int64_t d, double lam, sa_prior **out_prior);

/* --- CDEP per-example masks --- */
/** CDEP as sa_prior_cdep, with a set of n_masks masks per training example: masks holds n_examples ×
 *  n_masks × d values in [0, 1], set e (values e·n_masks·d onwards) for row e of the x given to sa_train
 *  (which uses, for each mini-batch row, the set of the training example it holds, whatever the shuffling)
 *  or to sa_loss_and_gradients (set e for row e). n must equal n_examples: SA_ERR_SHAPE otherwise, reported
 *  by sa_train at its first step or by sa_loss_and_gradients. With every set equal to one shared set the
 *  result is sa_prior_cdep's, bit for bit. Into *out_prior (free with sa_prior_free). */
SA_API int sa_prior_cdep_per_example(const float *masks, int64_t n_examples, int64_t n_masks, int64_t d, double lam,
                                     sa_prior **out_prior);

/** Expected-Gradients sampling of an EG prior (not sa_prior_input_gradient): k >= 1 references per example
 *  and, with n_references > 0, the reference set `references` (n_references × reference_size floats,
 *  reference_size the model's input size); references = NULL and n_references = 0: the other examples of
 *  the mini-batch. Call before the prior is first used. */
SA_API int sa_prior_set_sampling(sa_prior *prior, int64_t k, const float *references, int64_t n_references,
                                 int64_t reference_size);

/** The draws of an EG prior for a mini-batch of n examples at global step `global_step` (from 0) of a run
 *  seeded `seed`: out_reference_index[n·k + j] the reference row (of the reference set, or of the batch)
 *  and out_alphas[n·k + j] its α, for example n and draw j; both buffers hold capacity >= n·k entries. */
SA_API int sa_prior_draws(const sa_prior *prior, int64_t n, uint64_t seed, int64_t global_step,
                          int64_t *out_reference_index, float *out_alphas, int64_t capacity);

/** The Deep Attribution Prior (Weinberger, Janizek, Lee 2020): a prior network g (prior_network: any model
 *  with input size m and one output; copied) maps each input element's meta-features (meta_features: d x m,
 *  row j for input element j) to a predicted importance, and is trained jointly with the model:
 *  lam · mean_nj rho(g(m_j) − |phi_nj|), rho = |.| (squared = 0, the authors') or (.)^2 (squared = 1), phi the
 *  EG attributions as for the priors above. Every training step also steps g with Adam at learning rate lr
 *  (the authors: 1e-3). The prior is stateful: each use continues from g's current state;
 *  sa_prior_dapr_network gives it (the learned g after sa_train). */
SA_API int sa_prior_dapr(const sa_model *prior_network, const float *meta_features, int64_t d, int64_t m, double lam,
                         int squared, float lr, sa_prior **out_prior);

/** The current prior network g of a DAPr prior, as a new model (free with sa_model_free). */
SA_API int sa_prior_dapr_network(const sa_prior *prior, sa_model **out_model);

/** Frees a prior (NULL is a no-op). */
SA_API void sa_prior_free(sa_prior *prior);

#ifdef __cplusplus
}
#endif

#endif /* SWIFTATTR_H */
