"""Every ctypes signature of libswiftattr.so, in one place.

The rest of the package calls C only through the ``lib`` object defined here and the ``check`` helper,
which turns a non-zero status into :class:`SwiftAttrError` carrying the library's message.
"""
from __future__ import annotations

import ctypes
import os
from ctypes import POINTER, c_char_p, c_double, c_float, c_int, c_int32, c_int64, c_uint64, c_void_p

import numpy as np


class SwiftAttrError(ValueError):
    """An error reported by libswiftattr; ``code`` is the C status, the message names the argument."""

    def __init__(self, message: str, code: int = -2):
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

f32p = POINTER(c_float)
f64p = POINTER(c_double)
i64p = POINTER(c_int64)
model_p = c_void_p


def check(status: int) -> None:
    """Raise SwiftAttrError with the thread's last message when ``status`` is not SA_OK."""
    if status != 0:
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


def iptr(a: np.ndarray):
    """Pointer to an int64 C-contiguous array (None passes NULL)."""
    return None if a is None else a.ctypes.data_as(i64p)


# --- errors -----------------------------------------------------------------------------------------
_sig("sa_last_error", [], c_char_p)
_sig("sa_version", [])

# --- build information and threads ------------------------------------------------------------------
_sig("sa_build_info", [], c_char_p)          # const char *sa_build_info(void);
_sig("sa_set_num_threads", [c_int])          # int sa_set_num_threads(int n);
_sig("sa_get_num_threads", [])               # int sa_get_num_threads(void);

# --- models -----------------------------------------------------------------------------------------
_sig("sa_model_create", [i64p, c_int64, POINTER(model_p)])
_sig("sa_model_free", [model_p], None)
_sig("sa_model_add_dense", [model_p, f32p, c_int64, c_int64, f32p])
_sig("sa_model_add_conv1d", [model_p, f32p, c_int64, c_int64, c_int64, f32p, c_int64, c_int64, c_int64])
_sig("sa_model_add_conv2d", [model_p, f32p, c_int64, c_int64, c_int64, c_int64, f32p] + [c_int64] * 6)
_sig("sa_model_add_maxpool1d", [model_p, c_int64, c_int64, c_int64])
_sig("sa_model_add_maxpool2d", [model_p] + [c_int64] * 6)
_sig("sa_model_add_avgpool1d", [model_p, c_int64, c_int64, c_int64])
_sig("sa_model_add_avgpool2d", [model_p] + [c_int64] * 6)
_sig("sa_model_add_global_avgpool", [model_p])
_sig("sa_model_add_flatten", [model_p])
_sig("sa_model_add_activation", [model_p, c_int32, c_float])
_sig("sa_model_add_batchnorm", [model_p, c_int64, f32p, f32p, f32p, f32p, c_float])
_sig("sa_model_add_dropout", [model_p, c_float])
_sig("sa_model_input_shape", [model_p, i64p, i64p])
_sig("sa_model_num_layers", [model_p, i64p])
_sig("sa_model_size_at", [model_p, c_int64, i64p])
_sig("sa_model_layer_kind", [model_p, c_int64, POINTER(c_int32)])
_sig("sa_model_save", [model_p, c_char_p])
_sig("sa_model_load", [c_char_p, POINTER(model_p)])

# Layer kinds (sa_layer_kind).
LAYER_KINDS = [
    "dense", "conv1d", "conv2d", "maxpool1d", "maxpool2d", "avgpool1d", "avgpool2d", "global_avgpool",
    "flatten", "relu", "leaky_relu", "elu", "softplus", "sigmoid", "tanh", "softmax", "batchnorm", "dropout",
]
LAYER_KIND = {name: i for i, name in enumerate(LAYER_KINDS)}

# --- forward and gradients --------------------------------------------------------------------------
_sig("sa_forward", [model_p, f32p, c_int64, f32p])
_sig("sa_forward_to_layer", [model_p, f32p, c_int64, c_int64, f32p])
_sig("sa_gradient", [model_p, f32p, c_int64, f32p, f32p])
_sig("sa_saliency", [model_p, f32p, c_int64, i64p, c_int64, c_int32, f32p])
_sig("sa_input_x_gradient", [model_p, f32p, c_int64, i64p, c_int64, f32p])
_sig("sa_integrated_gradients",
     [model_p, f32p, c_int64, f32p, c_int64, i64p, c_int64, c_int64, c_int32, c_int64, f32p, f32p])
_sig("sa_expected_gradients",
     [model_p, f32p, c_int64, f32p, c_int64, i64p, c_int64, c_int64, c_uint64, c_int64, c_int64, f32p])
_sig("sa_smoothgrad",
     [model_p, f32p, c_int64, i64p, c_int64, c_int32, c_int64, c_float, c_uint64, c_int64, c_int64, f32p])

IG_METHODS = {"riemann_left": 0, "riemann_right": 1, "riemann_middle": 2, "riemann_trapezoid": 3, "gausslegendre": 4}
NT_TYPES = {"smoothgrad": 0, "smoothgrad_sq": 1, "vargrad": 2}

# --- DeepLIFT and DeepSHAP ---------------------------------------------------------------------------
_sig("sa_deeplift",
     [model_p, f32p, c_int64, f32p, c_int64, i64p, c_int64, c_int32, c_int32, c_int32, c_int64, f32p, f32p])
_sig("sa_deepshap",
     [model_p, f32p, c_int64, f32p, c_int64, i64p, c_int64, c_int32, c_int32, c_int32, c_int64, f32p, f32p])

DEEPLIFT_RULES = {"rescale": 0, "revealcancel": 1, "genomics": 2}
MAXPOOL_RULES = {"gradient": 0, "crossmax": 1}

# --- RATE (swiftattr.h, section RATE) ----------------------------------------------------------------
_RATE_OPTIONS = [c_int, i64p, c_int64, i64p, i64p, c_int64, c_double]
_RATE_OUTPUTS = [f64p, f64p, f64p, f64p, i64p]
_sig("sa_rate_from_esa", [c_int64, c_int64, f64p, f64p] + _RATE_OPTIONS + _RATE_OUTPUTS)
_sig("sa_rate_from_gaussian",
     [c_int64, c_int64, c_int64, f64p, f64p, f64p, c_int, c_int64] + _RATE_OPTIONS + _RATE_OUTPUTS + [f64p])
_sig("sa_rate_from_draws",
     [c_int64, c_int64, c_int64, c_int64, f64p, f64p, c_int, c_int64] + _RATE_OPTIONS + _RATE_OUTPUTS + [f64p])
_sig("sa_rate_last_layer",
     [c_int64, c_int64, c_int64, c_int64, f64p, f64p, f64p, f64p, f64p, c_int, c_int64]
     + _RATE_OPTIONS + _RATE_OUTPUTS + [f64p])
_sig("sa_bayesian_last_layer_regression",
     [c_int64, c_int64, c_int64, f64p, f64p, c_int64, c_double, f64p, f64p, f64p, f64p, f64p])
_sig("sa_bayesian_last_layer_classification",
     [c_int64, c_int64, c_int64, f64p, i64p, c_double, c_int64, c_double, f64p, f64p, f64p])
