"""Elementwise nonlinearities and their derivatives, written from their outputs.

Each derivative is expressed through the function's *output*, which is what the forward
pass keeps in its cache:

    sigmoid'(x) = s * (1 - s)        with s = sigmoid(x)
    tanh'(x)    = 1 - t**2           with t = tanh(x)
    relu'(x)    = 1 if x > 0 else 0  (torch's convention: relu'(0) = 0)

Every function returns a new array.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """sigmoid(x) = 1 / (1 + exp(-x)), computed as (1 + tanh(x / 2)) / 2.

    The two forms are the same function. The tanh form cannot overflow (exp(-x) does, for
    x below -88 in float32 and -709 in float64), so there is no warning to silence and no
    value to clip; its absolute error is within a few units in the last place of 1.
    """
    return 0.5 * np.tanh(0.5 * x) + 0.5


def sigmoid_grad(s: np.ndarray) -> np.ndarray:
    """d sigmoid / dx, given s = sigmoid(x)."""
    return s * (1.0 - s)


def tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x)


def tanh_grad(t: np.ndarray) -> np.ndarray:
    """d tanh / dx, given t = tanh(x)."""
    return 1.0 - t * t


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def relu_grad(r: np.ndarray) -> np.ndarray:
    """d relu / dx, given r = relu(x): 1 where x > 0, else 0 (so 0 at x == 0, as torch)."""
    return (r > 0).astype(r.dtype)  # 1 where x > 0, else 0  {#relu-grad}


ACTIVATIONS = {"tanh": (tanh, tanh_grad), "relu": (relu, relu_grad)}
