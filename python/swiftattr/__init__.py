"""swiftattr: fast attribution and interaction methods for trained neural networks.

    import swiftattr as sa
    net = sa.Sequential([sa.Linear(W1, b1), sa.ReLU(), sa.Linear(W2, b2)])
    phi = sa.integrated_gradients(net, x, target=3)
"""
from ._ffi import SwiftAttrError
from .model import (
    ELU, LSTM, Add, AvgPool1d, AvgPool2d, BatchNorm, BatchNorm1d, BatchNorm2d, Concat, Conv1d, Conv2d, Dense, Dropout, Embedding,
    Flatten, Graph, GlobalAvgPool, LazyNetwork, LeakyReLU, Linear, MaxPool1d, MaxPool2d, Network, ReLU, Reshape, Sequential, Sigmoid, Softmax, Softplus,
    Tanh, load,
)
from .convert import from_sklearn, from_torch
from .onnx_import import from_onnx
from .deeplift import deeplift, deepshap
from .decomposition import contextual_decomposition
from .attribution import (
    expected_gradients, gradient, input_x_gradient, integrated_gradients, saliency, smoothgrad,
)
from .acd import acd
from .layers import (
    grad_cam, guided_grad_cam, layer_conductance, layer_deeplift, layer_gradient_x_activation, layer_integrated_gradients,
    layer_saliency,
    neuron_integrated_gradients, noise_tunnel,
)
from .perturbation import (
    feature_ablation, feature_permutation, kernel_shap, lime, occlusion, shapley_value_sampling,
)
from .training import loss_and_gradients, train
from . import priors
from .dapr import DAPr
from .cdep import CDEP
from .hessians import expected_hessians, hessian, hessian_vector_product, integrated_hessians, with_softplus
from .trim import Transform, fourier_transform, frequency_bands, trim
from .rate import BayesianLastLayer, RateResult, bayesian_last_layer, rate, rate_last_layer
from .rules import deconvolution, guided_backprop, lrp
from . import plot
# --- issue 13: reality checks (faithfulness metrics, sanity checks, simulations) and wavelet distillation ---
from . import awd, checks, metrics, simulate
# Progress, many machines and RATE in one call (issue 15).
from . import distributed
from .rate import GlobalExplanation, explain_globally
from .runtime import build_info, get_num_threads, set_num_threads, warn_about_environment as _warn

_warn()
del _warn

__version__ = "0.2.0"
