"""Every ctypes signature of libswiftattr.so, in one place, each under its C prototype as swiftattr.h
declares it, and a named constant for every value of the header's enums and status codes.

The rest of the package calls C only through the ``lib`` object defined here and the ``check`` helper,
which turns a non-zero status into :class:`SwiftAttrError` carrying the library's message.
python/tests/test_abi.py checks the prototypes, the argument types and the constants against the header.
"""
from __future__ import annotations

import ctypes
import os
from ctypes import POINTER, c_char_p, c_double, c_float, c_int, c_int32, c_int64, c_size_t, c_uint64, c_void_p

import numpy as np


# The interface version these bindings are written for (SA_VERSION in swiftattr.h); checked on load.
SA_VERSION = 3

# Status codes (enum sa_status).
SA_OK = 0
SA_ERR_NULL_POINTER = -1
SA_ERR_INVALID_ARGUMENT = -2
SA_ERR_SHAPE = -3
SA_ERR_NON_FINITE = -4
SA_ERR_OUT_OF_RANGE = -5
SA_ERR_UNKNOWN_ENUM = -6
SA_ERR_IO = -7
SA_ERR_FORMAT = -8
SA_ERR_NUMERICAL = -9
SA_ERR_BUFFER_TOO_SMALL = -10
SA_ERR_FROZEN = -11
SA_ERR_OUT_OF_MEMORY = -12
SA_ERR_CANCELLED = -13
SA_ERR_INTERNAL = -99


class SwiftAttrError(ValueError):
    """An error reported by libswiftattr, or found in Python before calling it; ``code`` is the C status
    for the same failure (an ``SA_ERR_*`` constant), the message names the argument."""

    def __init__(self, message: str, code: int = SA_ERR_INVALID_ARGUMENT):
        super().__init__(message)
        self.code = code


def _find_library() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.path.join(here, "libswiftattr.so")]
    env = os.environ.get("SWIFTATTR_LIBRARY")
    if env:
        candidates.insert(0, env)
    # A development checkout: the package sits in python/ next to the Swift package's .build.
    root = os.path.dirname(os.path.dirname(here))
    candidates.append(os.path.join(root, ".build", "release", "libswiftattr.so"))
    for path in candidates:
        if os.path.exists(path):
            return path
    raise ImportError(
        "libswiftattr.so not found; install the package with `pip install ./python` "
        f"(looked in: {', '.join(candidates)})"
    )


lib = ctypes.CDLL(_find_library())
lib.sa_version.restype = c_int
lib.sa_version.argtypes = []
if lib.sa_version() != SA_VERSION:
    raise ImportError(f"{lib._name} implements swiftattr interface version {lib.sa_version()}, but this package's "
                      f"bindings are for version {SA_VERSION}: rebuild the library from the same checkout")

f32p = POINTER(c_float)
f64p = POINTER(c_double)
i64p = POINTER(c_int64)
u8p = POINTER(ctypes.c_uint8)
model_p = c_void_p


def check(status: int) -> None:
    """Raise SwiftAttrError with the thread's last message when ``status`` is not SA_OK."""
    if status != SA_OK:
        raise SwiftAttrError(lib.sa_last_error().decode("utf-8", "replace"), status)


def _sig(name: str, argtypes, restype=c_int) -> None:
    fn = getattr(lib, name)
    fn.argtypes = argtypes
    fn.restype = restype


def fptr(a: np.ndarray):
    """Pointer to a float32 C-contiguous array (None passes NULL)."""
    return None if a is None else a.ctypes.data_as(f32p)


def dptr(a: np.ndarray):
    """Pointer to a float64 C-contiguous array (None passes NULL)."""
    return None if a is None else a.ctypes.data_as(f64p)


def bptr(a: np.ndarray):
    """Pointer to a uint8 C-contiguous array (None passes NULL)."""
    return None if a is None else a.ctypes.data_as(u8p)


def iptr(a: np.ndarray):
    """Pointer to an int64 C-contiguous array (None passes NULL)."""
    return None if a is None else a.ctypes.data_as(i64p)


# --- errors -----------------------------------------------------------------------------------------
# SA_API const char *sa_last_error(void);
_sig("sa_last_error", [], c_char_p)
# SA_API int sa_version(void);
_sig("sa_version", [])

# --- build information and threads ------------------------------------------------------------------
# SA_API const char *sa_build_info(void);
_sig("sa_build_info", [], c_char_p)
# SA_API int sa_set_num_threads(int n);
_sig("sa_set_num_threads", [c_int])
# SA_API int sa_get_num_threads(void);
_sig("sa_get_num_threads", [])

# --- models -----------------------------------------------------------------------------------------
# SA_API int sa_model_create(const int64_t *input_shape, int64_t ndim, sa_model **out_model);
_sig("sa_model_create", [i64p, c_int64, POINTER(model_p)])
# SA_API void sa_model_free(sa_model *model);
_sig("sa_model_free", [model_p], None)
# SA_API int sa_model_add_dense(sa_model *model, const float *weight, int64_t out_features, int64_t in_features,
#                               const float *bias);
_sig("sa_model_add_dense", [model_p, f32p, c_int64, c_int64, f32p])
# SA_API int sa_model_add_conv1d(sa_model *model, const float *weight, int64_t out_channels, int64_t in_channels,
#                                int64_t kernel_size, const float *bias, int64_t stride, int64_t padding,
#                                int64_t dilation);
_sig("sa_model_add_conv1d", [model_p, f32p, c_int64, c_int64, c_int64, f32p, c_int64, c_int64, c_int64])
# SA_API int sa_model_add_conv2d(sa_model *model, const float *weight, int64_t out_channels, int64_t in_channels,
#                                int64_t kernel_h, int64_t kernel_w, const float *bias,
#                                int64_t stride_h, int64_t stride_w, int64_t padding_h, int64_t padding_w,
#                                int64_t dilation_h, int64_t dilation_w);
_sig("sa_model_add_conv2d", [model_p, f32p, c_int64, c_int64, c_int64, c_int64, f32p] + [c_int64] * 6)
# SA_API int sa_model_add_maxpool1d(sa_model *model, int64_t kernel_size, int64_t stride, int64_t padding);
_sig("sa_model_add_maxpool1d", [model_p, c_int64, c_int64, c_int64])
# SA_API int sa_model_add_maxpool2d(sa_model *model, int64_t kernel_h, int64_t kernel_w, int64_t stride_h,
#                                   int64_t stride_w, int64_t padding_h, int64_t padding_w);
_sig("sa_model_add_maxpool2d", [model_p] + [c_int64] * 6)
# SA_API int sa_model_add_avgpool1d(sa_model *model, int64_t kernel_size, int64_t stride, int64_t padding);
_sig("sa_model_add_avgpool1d", [model_p, c_int64, c_int64, c_int64])
# SA_API int sa_model_add_avgpool2d(sa_model *model, int64_t kernel_h, int64_t kernel_w, int64_t stride_h,
#                                   int64_t stride_w, int64_t padding_h, int64_t padding_w);
_sig("sa_model_add_avgpool2d", [model_p] + [c_int64] * 6)
# SA_API int sa_model_add_global_avgpool(sa_model *model);
_sig("sa_model_add_global_avgpool", [model_p])
# SA_API int sa_model_add_flatten(sa_model *model);
_sig("sa_model_add_flatten", [model_p])
# SA_API int sa_model_add_reshape(sa_model *model, const int64_t *shape, int64_t ndim);
_sig("sa_model_add_reshape", [model_p, i64p, c_int64])
# SA_API int sa_model_add_activation(sa_model *model, int kind, float parameter);
_sig("sa_model_add_activation", [model_p, c_int32, c_float])
# SA_API int sa_model_add_batchnorm(sa_model *model, int64_t channels, const float *weight, const float *bias,
#                                   const float *running_mean, const float *running_var, float eps);
_sig("sa_model_add_batchnorm", [model_p, c_int64, f32p, f32p, f32p, f32p, c_float])
# SA_API int sa_model_add_dropout(sa_model *model, float p);
_sig("sa_model_add_dropout", [model_p, c_float])
# SA_API int sa_model_add_embedding(sa_model *model, const float *weight, int64_t num_embeddings, int64_t embedding_dim);
_sig("sa_model_add_embedding", [model_p, f32p, c_int64, c_int64])
# SA_API int sa_model_add_lstm(sa_model *model, const float *weight_ih, const float *weight_hh, const float *bias_ih,
#                              const float *bias_hh, int64_t input_size, int64_t hidden_size, int return_sequences);
_sig("sa_model_add_lstm", [model_p, f32p, f32p, f32p, f32p, c_int64, c_int64, c_int32])
# SA_API int sa_model_embedding_rest(const sa_model *model, sa_model **out_model);
_sig("sa_model_embedding_rest", [model_p, POINTER(model_p)])
# SA_API int sa_embed(const sa_model *model, const float *x, int64_t n, float *out);
_sig("sa_embed", [model_p, f32p, c_int64, f32p])
# SA_API int sa_model_set_input(sa_model *model, int64_t value);
_sig("sa_model_set_input", [model_p, c_int64])
# SA_API int sa_model_add_add(sa_model *model, const int64_t *inputs, int64_t n_inputs);
_sig("sa_model_add_add", [model_p, i64p, c_int64])
# SA_API int sa_model_add_concat(sa_model *model, const int64_t *inputs, int64_t n_inputs);
_sig("sa_model_add_concat", [model_p, i64p, c_int64])
# SA_API int sa_model_node_inputs(const sa_model *model, int64_t node, int64_t *out, int64_t capacity, int64_t *count);
_sig("sa_model_node_inputs", [model_p, c_int64, i64p, c_int64, i64p])
# SA_API int sa_model_input_shape(const sa_model *model, int64_t *shape, int64_t *ndim);
_sig("sa_model_input_shape", [model_p, i64p, i64p])
# SA_API int sa_model_num_layers(const sa_model *model, int64_t *count);
_sig("sa_model_num_layers", [model_p, i64p])
# SA_API int sa_model_size_at(const sa_model *model, int64_t layer, int64_t *size);
_sig("sa_model_size_at", [model_p, c_int64, i64p])
# SA_API int sa_model_shape_at(const sa_model *model, int64_t value, int64_t *shape, int64_t *ndim);
_sig("sa_model_shape_at", [model_p, c_int64, i64p, i64p])
# SA_API int sa_model_layer_kind(const sa_model *model, int64_t layer, int *kind);
_sig("sa_model_layer_kind", [model_p, c_int64, POINTER(c_int32)])
# SA_API int sa_model_save(const sa_model *model, const char *path);
_sig("sa_model_save", [model_p, c_char_p])
# SA_API int sa_model_load(const char *path, sa_model **out_model);
_sig("sa_model_load", [c_char_p, POINTER(model_p)])

# Layer kinds (enum sa_layer_kind; also the codes in model files).
SA_LAYER_DENSE = 0
SA_LAYER_CONV1D = 1
SA_LAYER_CONV2D = 2
SA_LAYER_MAXPOOL1D = 3
SA_LAYER_MAXPOOL2D = 4
SA_LAYER_AVGPOOL1D = 5
SA_LAYER_AVGPOOL2D = 6
SA_LAYER_GLOBAL_AVGPOOL = 7
SA_LAYER_FLATTEN = 8
SA_LAYER_RELU = 9
SA_LAYER_LEAKY_RELU = 10
SA_LAYER_ELU = 11
SA_LAYER_SOFTPLUS = 12
SA_LAYER_SIGMOID = 13
SA_LAYER_TANH = 14
SA_LAYER_SOFTMAX = 15
SA_LAYER_BATCHNORM = 16
SA_LAYER_DROPOUT = 17
SA_LAYER_ADD = 18
SA_LAYER_CONCAT = 19
SA_LAYER_EMBEDDING = 20
SA_LAYER_LSTM = 21
SA_LAYER_RESHAPE = 22

# Layer kinds by the lower-case name of their constant, in code order.
LAYER_KIND = {name[len("SA_LAYER_"):].lower(): code for name, code in globals().items() if name.startswith("SA_LAYER_")}
LAYER_KINDS = sorted(LAYER_KIND, key=LAYER_KIND.get)
# Layer kind names by code (the codes are not contiguous: sequence and view kinds have their own ranges).
LAYER_NAME = {code: name for name, code in LAYER_KIND.items()}

# --- forward and gradients --------------------------------------------------------------------------
# SA_API int sa_forward(const sa_model *model, const float *x, int64_t n, float *out);
_sig("sa_forward", [model_p, f32p, c_int64, f32p])
# SA_API int sa_forward_to_layer(const sa_model *model, const float *x, int64_t n, int64_t layer, float *out);
_sig("sa_forward_to_layer", [model_p, f32p, c_int64, c_int64, f32p])
# SA_API int sa_gradient(const sa_model *model, const float *x, int64_t n, const float *cotangent, float *out);
_sig("sa_gradient", [model_p, f32p, c_int64, f32p, f32p])
# SA_API int sa_saliency(const sa_model *model, const float *x, int64_t n, const int64_t *target, int64_t n_target,
#                        int absolute, float *out);
_sig("sa_saliency", [model_p, f32p, c_int64, i64p, c_int64, c_int32, f32p])
# SA_API int sa_input_x_gradient(const sa_model *model, const float *x, int64_t n, const int64_t *target,
#                                int64_t n_target, float *out);
_sig("sa_input_x_gradient", [model_p, f32p, c_int64, i64p, c_int64, f32p])
# SA_API int sa_integrated_gradients(const sa_model *model, const float *x, int64_t n, const float *baselines,
#                                    int64_t n_baselines, const int64_t *target, int64_t n_target, int64_t n_steps,
#                                    int method, int64_t internal_batch_size, float *out, float *delta);
_sig("sa_integrated_gradients",
     [model_p, f32p, c_int64, f32p, c_int64, i64p, c_int64, c_int64, c_int32, c_int64, f32p, f32p])
# SA_API int sa_path_integrated_gradients(const sa_model *model, const float *x, int64_t n, const float *baselines,
#                                         int64_t n_baselines, const int64_t *target, int64_t n_target, int64_t n_steps,
#                                         int method, int64_t internal_batch_size, float *out, float *delta);
_sig("sa_path_integrated_gradients",
     [model_p, f32p, c_int64, f32p, c_int64, i64p, c_int64, c_int64, c_int32, c_int64, f32p, f32p])
# SA_API int sa_expected_gradients(const sa_model *model, const float *x, int64_t n, const float *references,
#                                  int64_t n_references, const int64_t *target, int64_t n_target, int64_t n_samples,
#                                  uint64_t seed, int64_t first_example, int64_t internal_batch_size, float *out);
_sig("sa_expected_gradients",
     [model_p, f32p, c_int64, f32p, c_int64, i64p, c_int64, c_int64, c_uint64, c_int64, c_int64, f32p])
# SA_API int sa_smoothgrad(const sa_model *model, const float *x, int64_t n, const int64_t *target, int64_t n_target,
#                          int nt_type, int64_t n_samples, float stdev, uint64_t seed, int64_t first_example,
#                          int64_t internal_batch_size, float *out);
_sig("sa_smoothgrad",
     [model_p, f32p, c_int64, i64p, c_int64, c_int32, c_int64, c_float, c_uint64, c_int64, c_int64, f32p])

# Integration rules (enum sa_ig_method), and Python's names for them (Captum's).
SA_IG_RIEMANN_LEFT = 0
SA_IG_RIEMANN_RIGHT = 1
SA_IG_RIEMANN_MIDDLE = 2
SA_IG_RIEMANN_TRAPEZOID = 3
SA_IG_GAUSS_LEGENDRE = 4
IG_METHODS = {"riemann_left": SA_IG_RIEMANN_LEFT, "riemann_right": SA_IG_RIEMANN_RIGHT,
              "riemann_middle": SA_IG_RIEMANN_MIDDLE, "riemann_trapezoid": SA_IG_RIEMANN_TRAPEZOID,
              "gausslegendre": SA_IG_GAUSS_LEGENDRE}

# SmoothGrad aggregations (enum sa_nt_type).
SA_NT_SMOOTHGRAD = 0
SA_NT_SMOOTHGRAD_SQ = 1
SA_NT_VARGRAD = 2
NT_TYPES = {"smoothgrad": SA_NT_SMOOTHGRAD, "smoothgrad_sq": SA_NT_SMOOTHGRAD_SQ, "vargrad": SA_NT_VARGRAD}

# --- DeepLIFT and DeepSHAP ---------------------------------------------------------------------------
# SA_API int sa_deeplift(const sa_model *model, const float *x, int64_t n, const float *baselines,
#                        int64_t n_baselines, const int64_t *target, int64_t n_target, int rule, int maxpool,
#                        int multiply_by_inputs, int64_t internal_batch_size, float *out, float *delta);
_sig("sa_deeplift",
     [model_p, f32p, c_int64, f32p, c_int64, i64p, c_int64, c_int32, c_int32, c_int32, c_int64, f32p, f32p])
# SA_API int sa_deepshap(const sa_model *model, const float *x, int64_t n, const float *references,
#                        int64_t n_references, const int64_t *target, int64_t n_target, int rule, int maxpool,
#                        int multiply_by_inputs, int64_t internal_batch_size, float *out, float *delta);
_sig("sa_deepshap",
     [model_p, f32p, c_int64, f32p, c_int64, i64p, c_int64, c_int32, c_int32, c_int32, c_int64, f32p, f32p])

# DeepLIFT rules (enum sa_deeplift_rule) and max-pooling rules (enum sa_maxpool_rule).
SA_DEEPLIFT_RESCALE = 0
SA_DEEPLIFT_REVEALCANCEL = 1
SA_DEEPLIFT_GENOMICS = 2
DEEPLIFT_RULES = {"rescale": SA_DEEPLIFT_RESCALE, "revealcancel": SA_DEEPLIFT_REVEALCANCEL, "genomics": SA_DEEPLIFT_GENOMICS}
SA_MAXPOOL_GRADIENT = 0
SA_MAXPOOL_CROSSMAX = 1
MAXPOOL_RULES = {"gradient": SA_MAXPOOL_GRADIENT, "crossmax": SA_MAXPOOL_CROSSMAX}

# --- Contextual Decomposition ------------------------------------------------------------------------
# SA_API int sa_contextual_decomposition(const sa_model *model, const float *x, int64_t n, const float *mask,
#                                        int64_t n_masks, int64_t internal_batch_size, float *relevant,
#                                        float *irrelevant);
_sig("sa_contextual_decomposition", [model_p, f32p, c_int64, f32p, c_int64, c_int64, f32p, f32p])

# --- RATE (swiftattr.h, section RATE) ----------------------------------------------------------------
# Effect-size projections (enum sa_projection).
SA_PROJECTION_COVARIANCE = 0
SA_PROJECTION_PSEUDOINVERSE = 1
PROJECTIONS = {"covariance": SA_PROJECTION_COVARIANCE, "pseudoinverse": SA_PROJECTION_PSEUDOINVERSE}


class RateOptions(ctypes.Structure):
    """``sa_rate_options``, field for field (test_abi.py compares it with the header). Start from
    ``lib.sa_rate_default_options()``, which sets ``struct_size`` to the library's size of the struct."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("exact_kld", c_int),
        ("projection", c_int),
        ("rank", c_int64),
        ("jitter", c_double),
        ("nullify", i64p),
        ("nullify_count", c_int64),
        ("group_members", i64p),
        ("group_offsets", i64p),
        ("group_count", c_int64),
    ]


rate_options_p = POINTER(RateOptions)
_RATE_OUTPUTS = [f64p, f64p, f64p, f64p, i64p]  # rate, kld, delta, ess, info
# SA_API sa_rate_options sa_rate_default_options(void);
_sig("sa_rate_default_options", [], RateOptions)
# SA_API int sa_rate_from_esa(int64_t classes, int64_t p, const double *esa_mean, const double *esa_cov,
#                             const sa_rate_options *options,
#                             double *rate, double *kld, double *delta, double *ess, int64_t *info);
_sig("sa_rate_from_esa", [c_int64, c_int64, f64p, f64p, rate_options_p] + _RATE_OUTPUTS)
# SA_API int sa_rate_from_gaussian(int64_t classes, int64_t n, int64_t p, const double *X, const double *M_F,
#                                  const double *V_F, const sa_rate_options *options,
#                                  double *rate, double *kld, double *delta, double *ess, int64_t *info,
#                                  double *esa_mean);
_sig("sa_rate_from_gaussian", [c_int64, c_int64, c_int64, f64p, f64p, f64p, rate_options_p] + _RATE_OUTPUTS + [f64p])
# SA_API int sa_rate_from_draws(int64_t classes, int64_t draws, int64_t n, int64_t p, const double *X,
#                               const double *f_draws, const sa_rate_options *options,
#                               double *rate, double *kld, double *delta, double *ess, int64_t *info,
#                               double *esa_mean);
_sig("sa_rate_from_draws", [c_int64, c_int64, c_int64, c_int64, f64p, f64p, rate_options_p] + _RATE_OUTPUTS + [f64p])
# SA_API int sa_rate_last_layer(int64_t classes, int64_t n, int64_t p, int64_t h, const double *X, const double *H,
#                               const double *W_mean, const double *W_cov, const double *b,
#                               const sa_rate_options *options,
#                               double *rate, double *kld, double *delta, double *ess, int64_t *info,
#                               double *esa_mean);
_sig("sa_rate_last_layer",
     [c_int64, c_int64, c_int64, c_int64, f64p, f64p, f64p, f64p, f64p, rate_options_p] + _RATE_OUTPUTS + [f64p])
# SA_API int sa_bayesian_last_layer_regression(int64_t n, int64_t h, int64_t outputs, const double *H, const double *y,
#                                              int64_t max_iter, double tol,
#                                              double *W_mean, double *W_cov, double *b,
#                                              double *noise_precision, double *prior_precision);
_sig("sa_bayesian_last_layer_regression",
     [c_int64, c_int64, c_int64, f64p, f64p, c_int64, c_double, f64p, f64p, f64p, f64p, f64p])
# SA_API int sa_bayesian_last_layer_classification(int64_t n, int64_t h, int64_t classes, const double *H,
#                                                  const int64_t *labels, double prior_precision, int64_t max_iter,
#                                                  double tol, double *W_mean, double *W_cov, double *b);
_sig("sa_bayesian_last_layer_classification",
     [c_int64, c_int64, c_int64, f64p, i64p, c_double, c_int64, c_double, f64p, f64p, f64p])

# --- Integrated Hessians and Expected Hessians --------------------------------------------------------
# SA_API int sa_integrated_hessians(const sa_model *model, const float *x, int64_t n, const float *baselines,
#                                   int64_t n_baselines, const int64_t *target, int64_t n_target, int64_t n_steps,
#                                   int method, float softplus_beta, int64_t interaction_index,
#                                   int64_t internal_batch_size, float *out);
_sig("sa_integrated_hessians",
     [model_p, f32p, c_int64, f32p, c_int64, i64p, c_int64, c_int64, c_int32, c_float, c_int64, c_int64, f32p])
# SA_API int sa_expected_hessians(const sa_model *model, const float *x, int64_t n, const float *references,
#                                 int64_t n_references, const int64_t *target, int64_t n_target, int64_t n_samples,
#                                 uint64_t seed, int64_t first_example, float softplus_beta, int64_t interaction_index,
#                                 int64_t internal_batch_size, float *out);
_sig("sa_expected_hessians",
     [model_p, f32p, c_int64, f32p, c_int64, i64p, c_int64, c_int64, c_uint64, c_int64, c_float, c_int64, c_int64, f32p])
# SA_API int sa_hessian_vector_product(const sa_model *model, const float *x, int64_t n, const float *v,
#                                      const int64_t *target, int64_t n_target, float *out_gradient, float *out_hv);
_sig("sa_hessian_vector_product", [model_p, f32p, c_int64, f32p, i64p, c_int64, f32p, f32p])
# SA_API int sa_hessian(const sa_model *model, const float *x, int64_t n, const int64_t *target, int64_t n_target,
#                       int64_t internal_batch_size, float *out);
_sig("sa_hessian", [model_p, f32p, c_int64, i64p, c_int64, c_int64, f32p])
# SA_API int sa_model_with_softplus(const sa_model *model, float beta, sa_model **out_model);
_sig("sa_model_with_softplus", [model_p, c_float, POINTER(model_p)])

# --- attribution in a transformed domain (TRIM) -----------------------------------------------------
# SA_API int sa_model_transformed(const sa_model *model, const float *inverse, int64_t coefficients,
#                                 int use_residual, sa_model **out_model);
_sig("sa_model_transformed", [model_p, f32p, c_int64, c_int32, POINTER(model_p)])

# Quadrature rules of Integrated Hessians (enum sa_ih_method).
SA_IH_GAUSS_LEGENDRE = 0
SA_IH_GAUSS_LAGUERRE = 1
SA_IH_GRID = 2
IH_METHODS = {"gausslegendre": SA_IH_GAUSS_LEGENDRE, "gausslaguerre": SA_IH_GAUSS_LAGUERRE, "grid": SA_IH_GRID}

# --- ACD: Agglomerative Contextual Decomposition ---------------------------------------------------------
# How a group's relevant logits become its score (enum sa_acd_score_rule).
SA_ACD_SCORE_AUTO = 0
SA_ACD_SCORE_TARGET = 1
SA_ACD_SCORE_TARGET_MINUS_OTHER = 2
ACD_SCORE_RULES = {"auto": SA_ACD_SCORE_AUTO, "target": SA_ACD_SCORE_TARGET,
                   "target_minus_other": SA_ACD_SCORE_TARGET_MINUS_OTHER}
i32p = POINTER(c_int32)
# typedef int (*sa_group_scorer)(void *context, const float *masks, int64_t n_masks, int64_t mask_size, float *scores);
group_scorer_t = ctypes.CFUNCTYPE(c_int, c_void_p, f32p, c_int64, c_int64, f32p)
# SA_API int sa_acd_capacity(int64_t ndim, const int64_t *dims, int64_t block_size, int64_t *n_units,
#                            int64_t *max_levels);
_sig("sa_acd_capacity", [c_int64, i64p, c_int64, i64p, i64p])
# SA_API int sa_acd_1d(const sa_model *model, const float *x, int64_t target, int score_rule,
#                      double percentile_include, int64_t block_size, int64_t max_iterations, int32_t *labels,
#                      float *scores, float *unit_scores, float *full_score, int64_t *n_levels);
_sig("sa_acd_1d", [model_p, f32p, c_int64, c_int, c_double, c_int64, c_int64, i32p, f32p, f32p, f32p, i64p])
# SA_API int sa_acd_1d_scored(sa_group_scorer scorer, void *context, int64_t length, int64_t channels,
#                             double percentile_include, int64_t block_size, int64_t max_iterations,
#                             int32_t *labels, float *scores, float *unit_scores, float *full_score,
#                             int64_t *n_levels);
_sig("sa_acd_1d_scored", [group_scorer_t, c_void_p, c_int64, c_int64, c_double, c_int64, c_int64, i32p, f32p, f32p, f32p, i64p])
# SA_API int sa_acd_2d(const sa_model *model, const float *x, int64_t target, int score_rule,
#                      double percentile_include, int64_t block_size, int64_t max_iterations, int32_t *labels,
#                      float *scores, float *unit_scores, float *full_score, int32_t *merges, float *merge_gains,
#                      int64_t *n_levels, int64_t *n_iteration_levels);
_sig("sa_acd_2d",
     [model_p, f32p, c_int64, c_int, c_double, c_int64, c_int64, i32p, f32p, f32p, f32p, i32p, f32p, i64p, i64p])
# SA_API int sa_acd_2d_scored(sa_group_scorer scorer, void *context, int64_t height, int64_t width,
#                             int64_t channels, double percentile_include, int64_t block_size,
#                             int64_t max_iterations, int32_t *labels, float *scores, float *unit_scores,
#                             float *full_score, int32_t *merges, float *merge_gains, int64_t *n_levels,
#                             int64_t *n_iteration_levels);
_sig("sa_acd_2d_scored",
     [group_scorer_t, c_void_p, c_int64, c_int64, c_int64, c_double, c_int64, c_int64, i32p, f32p, f32p, f32p, i32p, f32p,
      i64p, i64p])
# --- perturbation methods ---------------------------------------------------------------------------
# SA_API int sa_occlusion(const sa_model *model, const float *x, int64_t n, const float *baselines, int64_t n_baselines,
#                         const int64_t *target, int64_t n_target, const int64_t *sliding_window_shapes,
#                         const int64_t *strides, int64_t ndim, int64_t internal_batch_size, float *out);
_sig("sa_occlusion",
     [model_p, f32p, c_int64, f32p, c_int64, i64p, c_int64, i64p, i64p, c_int64, c_int64, f32p])
# SA_API int sa_feature_ablation(const sa_model *model, const float *x, int64_t n, const float *baselines,
#                                int64_t n_baselines, const int64_t *target, int64_t n_target,
#                                const int64_t *feature_mask, int64_t mask_rows, int64_t internal_batch_size,
#                                float *out);
_sig("sa_feature_ablation",
     [model_p, f32p, c_int64, f32p, c_int64, i64p, c_int64, i64p, c_int64, c_int64, f32p])
# SA_API int sa_feature_permutation(const sa_model *model, const float *x, int64_t n, const int64_t *target,
#                                   int64_t n_target, const int64_t *feature_mask, int64_t mask_rows, uint64_t seed,
#                                   const int64_t *permutations, int64_t internal_batch_size, float *out);
_sig("sa_feature_permutation",
     [model_p, f32p, c_int64, i64p, c_int64, i64p, c_int64, c_uint64, i64p, c_int64, f32p])
# SA_API int sa_shapley_value_sampling(const sa_model *model, const float *x, int64_t n, const float *baselines,
#                                      int64_t n_baselines, const int64_t *target, int64_t n_target,
#                                      const int64_t *feature_mask, int64_t mask_rows, int64_t n_samples, uint64_t seed,
#                                      int64_t first_example, const int64_t *permutations,
#                                      int64_t internal_batch_size, float *out);
_sig("sa_shapley_value_sampling",
     [model_p, f32p, c_int64, f32p, c_int64, i64p, c_int64, i64p, c_int64, c_int64, c_uint64, c_int64,
      i64p, c_int64, f32p])
# SA_API int sa_kernel_shap(const sa_model *model, const float *x, int64_t n, const float *baselines,
#                           int64_t n_baselines, const int64_t *target, int64_t n_target, const int64_t *feature_mask,
#                           int64_t mask_rows, int64_t n_samples, uint64_t seed, int64_t first_example,
#                           const uint8_t *coalitions, int64_t coalition_rows, const double *coalition_weights,
#                           int64_t internal_batch_size, float *out);
_sig("sa_kernel_shap",
     [model_p, f32p, c_int64, f32p, c_int64, i64p, c_int64, i64p, c_int64, c_int64, c_uint64, c_int64, u8p,
      c_int64, f64p, c_int64, f32p])
# SA_API int sa_lime(const sa_model *model, const float *x, int64_t n, const float *baselines, int64_t n_baselines,
#                    const int64_t *target, int64_t n_target, const int64_t *feature_mask, int64_t mask_rows,
#                    int64_t n_samples, uint64_t seed, int64_t first_example, const uint8_t *coalitions,
#                    int64_t coalition_rows, double kernel_width, int distance, int surrogate, double alpha,
#                    int64_t internal_batch_size, float *out);
_sig("sa_lime",
     [model_p, f32p, c_int64, f32p, c_int64, i64p, c_int64, i64p, c_int64, c_int64, c_uint64, c_int64, u8p,
      c_int64, c_double, c_int32, c_int32, c_double, c_int64, f32p])

# LIME distances (enum sa_lime_distance) and surrogates (enum sa_lime_surrogate), with Python's names.
SA_LIME_COSINE = 0
SA_LIME_EUCLIDEAN = 1
LIME_DISTANCES = {"cosine": SA_LIME_COSINE, "euclidean": SA_LIME_EUCLIDEAN}
SA_LIME_LASSO = 0
SA_LIME_LINEAR = 1
LIME_SURROGATES = {"lasso": SA_LIME_LASSO, "linear": SA_LIME_LINEAR}
# --- Training (swiftattr.h, section Training) --------------------------------------------------------
# Losses (enum sa_loss), optimisers (enum sa_optimizer), early-stopping metrics (enum sa_metric).
SA_LOSS_MSE = 0
SA_LOSS_CROSS_ENTROPY = 1
SA_LOSS_BINARY_CROSS_ENTROPY = 2
LOSSES = {"mse": SA_LOSS_MSE, "cross_entropy": SA_LOSS_CROSS_ENTROPY, "binary_cross_entropy": SA_LOSS_BINARY_CROSS_ENTROPY}
SA_OPTIMIZER_SGD = 0
SA_OPTIMIZER_ADAM = 1
OPTIMIZERS = {"sgd": SA_OPTIMIZER_SGD, "adam": SA_OPTIMIZER_ADAM}
SA_METRIC_LOSS = 0
SA_METRIC_ACCURACY = 1
METRICS = {"loss": SA_METRIC_LOSS, "accuracy": SA_METRIC_ACCURACY}
# Columns of a history row (SA_TRAIN_HISTORY_COLUMNS): train loss, validation loss, validation accuracy.
TRAIN_HISTORY_COLUMNS = 3


class TrainOptions(ctypes.Structure):
    """``sa_train_options``, field for field (test_abi.py compares it with the header). Start from
    ``lib.sa_train_default_options()``, which sets ``struct_size`` to the library's size of the struct."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("loss", c_int),
        ("optimizer", c_int),
        ("metric", c_int),
        ("shuffle", c_int),
        ("initialize", c_int),
        ("learning_rate", c_double),
        ("momentum", c_double),
        ("beta1", c_double),
        ("beta2", c_double),
        ("eps", c_double),
        ("weight_decay", c_double),
        ("epochs", c_int64),
        ("batch_size", c_int64),
        ("seed", c_uint64),
        ("patience", c_int64),
        ("priors", POINTER(c_void_p)),
        ("n_priors", c_int64),
    ]


train_options_p = POINTER(TrainOptions)
# typedef int (*sa_train_callback)(void *user_data, int64_t epoch, double train_loss, double val_loss,
#                                  double val_accuracy);
TRAIN_CALLBACK = ctypes.CFUNCTYPE(c_int, c_void_p, c_int64, c_double, c_double, c_double)
# SA_API sa_train_options sa_train_default_options(void);
_sig("sa_train_default_options", [], TrainOptions)
# SA_API int sa_model_parameter_count(const sa_model *model, int64_t *count, int64_t *total);
_sig("sa_model_parameter_count", [model_p, i64p, i64p])
# SA_API int sa_model_parameter_shape(const sa_model *model, int64_t index, int64_t *shape, int64_t *ndim);
_sig("sa_model_parameter_shape", [model_p, c_int64, i64p, i64p])
# SA_API int sa_model_parameters(const sa_model *model, float *out, int64_t capacity);
_sig("sa_model_parameters", [model_p, f32p, c_int64])
# SA_API int sa_model_with_parameters(const sa_model *model, const float *values, int64_t count, sa_model **out_model);
_sig("sa_model_with_parameters", [model_p, f32p, c_int64, POINTER(model_p)])
# SA_API int sa_model_initialized(const sa_model *model, uint64_t seed, sa_model **out_model);
_sig("sa_model_initialized", [model_p, c_uint64, POINTER(model_p)])
# SA_API int sa_loss_and_gradients(const sa_model *model, const float *x, int64_t n, const int64_t *y_class,
#                                  const float *y_value, int loss, const sa_prior *const *priors, int64_t n_priors,
#                                  uint64_t seed, double *out_loss, float *out_grads, int64_t grads_capacity);
_sig("sa_loss_and_gradients", [model_p, f32p, c_int64, i64p, f32p, c_int, POINTER(c_void_p), c_int64, c_uint64, f64p,
                               f32p, c_int64])
# SA_API int sa_train(const sa_model *model, const float *x, int64_t n, const int64_t *y_class, const float *y_value,
#                     const float *val_x, int64_t val_n, const int64_t *val_y_class, const float *val_y_value,
#                     const sa_train_options *options, sa_train_callback callback, void *user_data,
#                     sa_model **out_model, double *out_history, int64_t history_capacity, int64_t *out_epochs);
_sig("sa_train", [model_p, f32p, c_int64, i64p, f32p, f32p, c_int64, i64p, f32p, train_options_p, TRAIN_CALLBACK,
                 c_void_p, POINTER(model_p), f64p, c_int64, i64p])


# --- layer attributions ---------------------------------------------------------------------------
# GradCAM resizing (enum sa_upsample), and Python's names for it (Captum's interpolate modes).
SA_UPSAMPLE_NONE = 0
SA_UPSAMPLE_NEAREST = 1
SA_UPSAMPLE_BILINEAR = 2
UPSAMPLE_MODES = {"none": SA_UPSAMPLE_NONE, "nearest": SA_UPSAMPLE_NEAREST, "bilinear": SA_UPSAMPLE_BILINEAR,
                  "linear": SA_UPSAMPLE_BILINEAR}
# SA_API int sa_layer_saliency(const sa_model *model, const float *x, int64_t n, const int64_t *target,
#                              int64_t n_target, int64_t layer, int absolute, int64_t internal_batch_size, float *out);
_sig("sa_layer_saliency", [model_p, f32p, c_int64, i64p, c_int64, c_int64, c_int32, c_int64, f32p])
# SA_API int sa_layer_gradient_x_activation(const sa_model *model, const float *x, int64_t n, const int64_t *target,
#                                           int64_t n_target, int64_t layer, int64_t internal_batch_size, float *out);
_sig("sa_layer_gradient_x_activation", [model_p, f32p, c_int64, i64p, c_int64, c_int64, c_int64, f32p])
# SA_API int sa_layer_integrated_gradients(const sa_model *model, const float *x, int64_t n, const float *baselines,
#                                          int64_t n_baselines, const int64_t *target, int64_t n_target, int64_t layer,
#                                          int64_t n_steps, int method, int64_t internal_batch_size, float *out,
#                                          float *delta);
_sig("sa_layer_integrated_gradients", [model_p, f32p, c_int64, f32p, c_int64, i64p, c_int64, c_int64, c_int64, c_int32, c_int64, f32p, f32p])
# SA_API int sa_layer_conductance(const sa_model *model, const float *x, int64_t n, const float *baselines,
#                                 int64_t n_baselines, const int64_t *target, int64_t n_target, int64_t layer,
#                                 int64_t n_steps, int method, int64_t internal_batch_size, float *out, float *delta);
_sig("sa_layer_conductance", [model_p, f32p, c_int64, f32p, c_int64, i64p, c_int64, c_int64, c_int64, c_int32, c_int64, f32p, f32p])
# SA_API int sa_layer_deeplift(const sa_model *model, const float *x, int64_t n, const float *baselines,
#                              int64_t n_baselines, const int64_t *target, int64_t n_target, int64_t layer, int rule,
#                              int maxpool, int multiply_by_inputs, int64_t internal_batch_size, float *out, float *delta);
_sig("sa_layer_deeplift", [model_p, f32p, c_int64, f32p, c_int64, i64p, c_int64, c_int64, c_int32, c_int32, c_int32, c_int64, f32p, f32p])
# SA_API int sa_grad_cam_shape(const sa_model *model, int64_t layer, int upsample, int64_t *shape, int64_t *ndim);
_sig("sa_grad_cam_shape", [model_p, c_int64, c_int32, i64p, i64p])
# SA_API int sa_grad_cam(const sa_model *model, const float *x, int64_t n, const int64_t *target, int64_t n_target,
#                        int64_t layer, int relu_attributions, int upsample, int64_t internal_batch_size, float *out);
_sig("sa_grad_cam", [model_p, f32p, c_int64, i64p, c_int64, c_int64, c_int32, c_int32, c_int64, f32p])
# SA_API int sa_neuron_integrated_gradients(const sa_model *model, const float *x, int64_t n, const float *baselines,
#                                           int64_t n_baselines, int64_t layer, int64_t neuron, int64_t n_steps,
#                                           int method, int64_t internal_batch_size, float *out, float *delta);
_sig("sa_neuron_integrated_gradients", [model_p, f32p, c_int64, f32p, c_int64, c_int64, c_int64, c_int64, c_int32, c_int64, f32p, f32p])
# SA_API int sa_noise_tunnel_inputs(const float *x, int64_t n, int64_t width, int64_t nt_samples, float stdev,
#                                   uint64_t seed, int64_t first_example, float *out);
_sig("sa_noise_tunnel_inputs", [f32p, c_int64, c_int64, c_int64, c_float, c_uint64, c_int64, f32p])
# SA_API int sa_noise_tunnel_baseline_draws(int64_t n, int64_t nt_samples, int64_t n_baselines, uint64_t seed,
#                                           int64_t first_example, int64_t *out);
_sig("sa_noise_tunnel_baseline_draws", [c_int64, c_int64, c_int64, c_uint64, c_int64, i64p])
# SA_API int sa_noise_tunnel_aggregate(const float *attributions, int64_t n, int64_t nt_samples, int64_t width,
#                                      int nt_type, float *out);
_sig("sa_noise_tunnel_aggregate", [f32p, c_int64, c_int64, c_int64, c_int32, f32p])
# --- propagation rules -------------------------------------------------------------------------------
# LRP rules (enum sa_lrp_rule): presets for sa_lrp_options.rule, per-node rules for node_rules.
SA_LRP_DEFAULT = -1
SA_LRP_EPSILON = 0
SA_LRP_GAMMA = 1
SA_LRP_ALPHA_BETA = 2
SA_LRP_ZB = 3
SA_LRP_IDENTITY = 4
SA_LRP_COMPOSITE = 5
LRP_PRESETS = {"epsilon": SA_LRP_EPSILON, "gamma": SA_LRP_GAMMA, "alpha_beta": SA_LRP_ALPHA_BETA, "composite": SA_LRP_COMPOSITE}
LRP_NODE_RULES = {"epsilon": SA_LRP_EPSILON, "gamma": SA_LRP_GAMMA, "alpha_beta": SA_LRP_ALPHA_BETA, "zb": SA_LRP_ZB,
                  "identity": SA_LRP_IDENTITY}


class LrpOptions(ctypes.Structure):
    """``sa_lrp_options``, field for field (test_abi.py compares it with the header). Start from
    ``lib.sa_lrp_default_options()``, which sets ``struct_size`` to the library's size of the struct."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("rule", c_int),
        ("n_nodes", c_int64),
        ("node_rules", POINTER(c_int)),
        ("epsilon", c_double),
        ("gamma", c_double),
        ("node_epsilon", f64p),
        ("node_gamma", f64p),
        ("alpha", c_double),
        ("beta", c_double),
        ("low", f32p),
        ("n_low", c_int64),
        ("high", f32p),
        ("n_high", c_int64),
        ("internal_batch_size", c_int64),
    ]


lrp_options_p = POINTER(LrpOptions)
# SA_API sa_lrp_options sa_lrp_default_options(void);
_sig("sa_lrp_default_options", [], LrpOptions)
# SA_API int sa_lrp(const sa_model *model, const float *x, int64_t n, const int64_t *target, int64_t n_target,
#                   const sa_lrp_options *options, float *out, float *delta);
_sig("sa_lrp", [model_p, f32p, c_int64, i64p, c_int64, lrp_options_p, f32p, f32p])
# SA_API int sa_guided_backprop(const sa_model *model, const float *x, int64_t n, const int64_t *target,
#                               int64_t n_target, int64_t internal_batch_size, float *out);
_sig("sa_guided_backprop", [model_p, f32p, c_int64, i64p, c_int64, c_int64, f32p])
# SA_API int sa_deconvolution(const sa_model *model, const float *x, int64_t n, const int64_t *target,
#                             int64_t n_target, int64_t internal_batch_size, float *out);
_sig("sa_deconvolution", [model_p, f32p, c_int64, i64p, c_int64, c_int64, f32p])
# --- progress ---------------------------------------------------------------------------------------
# typedef int (*sa_progress_fn)(void *user_data, int64_t done, int64_t total);
PROGRESS_FN = ctypes.CFUNCTYPE(c_int, c_void_p, c_int64, c_int64)
NO_PROGRESS = PROGRESS_FN()  # the NULL handler: sa_set_progress_handler(NO_PROGRESS, None) removes it
# SA_API int sa_set_progress_handler(sa_progress_fn callback, void *user_data);
_sig("sa_set_progress_handler", [PROGRESS_FN, c_void_p])
# --- seeded draws (swiftattr.h, section seeded draws) --------------------------------------------------
from ctypes import c_uint32  # noqa: E402  (kept in this block: the import line above is shared)

# SA_API int sa_random_normal(uint64_t seed, int64_t first_example, int64_t n, int64_t count, uint32_t stream,
#                             float *out);
_sig("sa_random_normal", [c_uint64, c_int64, c_int64, c_int64, c_uint32, f32p])
# SA_API int sa_random_uniform(uint64_t seed, int64_t first_example, int64_t n, int64_t count, uint32_t stream,
#                              float lo, float hi, float *out);
_sig("sa_random_uniform", [c_uint64, c_int64, c_int64, c_int64, c_uint32, c_float, c_float, f32p])
# --- Attribution priors (swiftattr.h, section Attribution priors) ---
prior_p = c_void_p
# SA_API int sa_prior_l1(double lam, sa_prior **out_prior);
_sig("sa_prior_l1", [c_double, POINTER(prior_p)])
# SA_API int sa_prior_gini(double lam, sa_prior **out_prior);
_sig("sa_prior_gini", [c_double, POINTER(prior_p)])
# SA_API int sa_prior_graph(const float *adjacency, int64_t d, double lam, sa_prior **out_prior);
_sig("sa_prior_graph", [f32p, c_int64, c_double, POINTER(prior_p)])
# SA_API int sa_prior_total_variation(double lam, sa_prior **out_prior);
_sig("sa_prior_total_variation", [c_double, POINTER(prior_p)])
# SA_API int sa_prior_input_gradient(const float *mask, int64_t d, double lam, sa_prior **out_prior);
_sig("sa_prior_input_gradient", [f32p, c_int64, c_double, POINTER(prior_p)])
# --- CDEP ---
# SA_API int sa_prior_cdep(const float *masks, int64_t n_masks, int64_t d, double lam, sa_prior **out_prior);
_sig("sa_prior_cdep", [f32p, c_int64, c_int64, c_double, POINTER(prior_p)])
# --- CDEP per-example masks ---
# SA_API int sa_prior_cdep_per_example(const float *masks, int64_t n_examples, int64_t n_masks, int64_t d, double lam,
#                                      sa_prior **out_prior);
_sig("sa_prior_cdep_per_example", [f32p, c_int64, c_int64, c_int64, c_double, POINTER(prior_p)])
# SA_API int sa_prior_set_sampling(sa_prior *prior, int64_t k, const float *references, int64_t n_references,
#                                  int64_t reference_size);
_sig("sa_prior_set_sampling", [prior_p, c_int64, f32p, c_int64, c_int64])
# SA_API int sa_prior_draws(const sa_prior *prior, int64_t n, uint64_t seed, int64_t global_step,
#                           int64_t *out_reference_index, float *out_alphas, int64_t capacity);
_sig("sa_prior_draws", [prior_p, c_int64, c_uint64, c_int64, i64p, f32p, c_int64])
# SA_API int sa_prior_dapr(const sa_model *prior_network, const float *meta_features, int64_t d, int64_t m, double lam,
#                          int squared, float lr, sa_prior **out_prior);
_sig("sa_prior_dapr", [model_p, f32p, c_int64, c_int64, c_double, c_int32, c_float, POINTER(prior_p)])
# SA_API int sa_prior_dapr_network(const sa_prior *prior, sa_model **out_model);
_sig("sa_prior_dapr_network", [prior_p, POINTER(model_p)])
# SA_API void sa_prior_free(sa_prior *prior);
_sig("sa_prior_free", [prior_p], None)
