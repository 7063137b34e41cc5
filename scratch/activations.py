"""Elementwise nonlinearities and their derivatives, written from their outputs.

Each derivative is expressed through the function's *output*, which is what the forward
pass keeps in its cache:

    sigmoid'(x) = s * (1 - s)        with s = sigmoid(x)
    tanh'(x)    = 1 - t**2           with t = tanh(x)
    relu'(x)    = 1 if x > 0 else 0  (torch's convention: relu'(0) = 0)
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """sigmoid(x) = 1 / (1 + exp(-x)), numerically stable for large |x|.

    exp(-x) overflows to inf for very negative x, and 1 / (1 + inf) = 0 is the right limit,
    so the overflow warning is silenced rather than the value clipped.
    """
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


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
    return (r > 0).astype(r.dtype)


ACTIVATIONS = {"tanh": (tanh, tanh_grad), "relu": (relu, relu_grad)}
