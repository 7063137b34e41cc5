"""A fully connected layer, torch.nn.Linear's equations, with its backward pass.

    y = x W^T + b          x (..., in_features), W (out_features, in_features), b (out_features,)

Backward, with dy = dL/dy (..., out_features), the leading axes flattened to N rows:

    dx = dy W              (..., in_features)
    dW = dy^T x            (out_features, in_features), summed over the N rows
    db = sum of dy         (out_features,), summed over the N rows
"""

from __future__ import annotations

import math

import numpy as np

from scratch._checks import check_array, check_bool, check_positive_int, check_shape
from scratch.module import Module, check_dtype


class Linear(Module):
    """y = x W^T + b over the last axis of x; any leading axes (or none) are kept.

    Init as torch: W and b from U(-1/sqrt(in_features), 1/sqrt(in_features)), drawn from
    ``self.rng`` (a NumPy Generator seeded by ``seed``), weight first.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 dtype=np.float64, seed: int | None = None) -> None:
        super().__init__()
        check_positive_int("in_features", in_features)
        check_positive_int("out_features", out_features)
        check_bool("bias", bias)
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.bias = bool(bias)
        self.dtype = check_dtype(dtype)
        self.rng = np.random.default_rng(seed)
        self.register_parameter("weight", np.zeros((out_features, in_features), self.dtype))
        if self.bias:
            self.register_parameter("bias", np.zeros(out_features, self.dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.fill_uniform_(self.rng, 1.0 / math.sqrt(self.in_features))

    def __repr__(self) -> str:
        dtype = "" if self.dtype == np.float64 else f", dtype={self.dtype}"
        return (f"Linear(in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias}{dtype})")

    def forward(self, input: np.ndarray) -> np.ndarray:
        """input (..., in_features) -> output (..., out_features)."""
        x = check_array("input", input, self.dtype)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"Linear: input.shape[-1] must be in_features = {self.in_features}, got input "
                f"of shape {x.shape}"
            )
        W = self._parameters["weight"]
        y = x @ W.T  # (..., out_features)
        if self.bias:
            y = y + self._parameters["bias"]
        self._save_for_backward(x)  # the input, for dW = dy^T x
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """dL/dy -> dL/dx; adds dL/dW (and dL/db) into ``self.grads``."""
        x = self._saved_for_backward()
        dy = check_array("grad_output", grad_output, self.dtype)
        check_shape("grad_output", dy, x.shape[:-1] + (self.out_features,))
        self._release_saved()
        W = self._parameters["weight"]
        dy_2d = dy.reshape(-1, self.out_features)  # (N, out)
        x_2d = x.reshape(-1, self.in_features)  # (N, in)
        dx = dy @ W  # (..., in_features)
        self._grads["weight"] += dy_2d.T @ x_2d  # (out, in)
        if self.bias:
            self._grads["bias"] += dy_2d.sum(axis=0)  # (out,)
        return dx
