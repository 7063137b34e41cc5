"""The recurrent product h_prev W_hh^T, which every step of every cell does."""

from __future__ import annotations

import numpy as np


def result_order(dtype) -> str:
    """The memory order hidden_product gives its (B, G*H) result: "F" (column-major) in
    float32, "C" (row-major) otherwise. The benchmark's floor asks here too."""
    return "F" if np.dtype(dtype) == np.float32 else "C"


def hidden_product(h_prev: np.ndarray, W_hh: np.ndarray) -> np.ndarray:
    """h_prev W_hh^T: (B, H_out) times (G*H, H_out) transposed gives (B, G*H).

    The same product as ``h_prev @ W_hh.T``, with one difference that only the speed sees: in
    float32 the result is written into a column-major array. OpenBLAS's single-precision kernel
    computes this shape (few rows B, many columns G*H) up to twice as fast into column-major
    memory as into row-major memory (docs/performance.md has the figures). The cell adds the
    result to the row-major input share next, and that sum is row-major again. In float64 the
    layout makes no difference worth having, so the result is row-major, as ``@`` gives it.
    """
    if h_prev.ndim != 2 or result_order(h_prev.dtype) == "C":
        return h_prev @ W_hh.T
    out = np.empty((h_prev.shape[0], W_hh.shape[0]), dtype=h_prev.dtype, order="F")
    return np.matmul(h_prev, W_hh.T, out=out)
