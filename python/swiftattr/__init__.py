"""swiftattr: attribution, interactions and global variable importance for trained neural networks."""
from ._ffi import SwiftAttrError
from .rate import BayesianLastLayer, RateResult, bayesian_last_layer, rate, rate_last_layer
from . import plot

__all__ = ["SwiftAttrError", "rate", "rate_last_layer", "bayesian_last_layer", "RateResult", "BayesianLastLayer", "plot"]
